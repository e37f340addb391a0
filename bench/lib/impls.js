'use strict'

// The two implementations behind one small interface, so that every scenario
// is written once: `open(impl, store, ctx)` gives the root API and a provider
// of that implementation on that kind of store.
//
// - 'orig': evtstore 12.0.1 from bench/node_modules (npm registry)
// - 'ours': evtstore-rs from the repository root (require('..'))
//
// Only what the implementation needs is required, so that a worker's memory
// (peak RSS) is that implementation's alone.

const path = require('path')

// EVTSTORE_BENCH_OURS: another checkout (or copy) of evtstore-rs to measure
const ROOT = process.env.EVTSTORE_BENCH_OURS
  ? path.resolve(process.env.EVTSTORE_BENCH_OURS)
  : path.join(__dirname, '..', '..')

// EVTSTORE_BENCH_BASELINE: a second evtstore-rs checkout, measured as 'base'
// beside 'ours' (before/after comparisons of a change)
const BASE = process.env.EVTSTORE_BENCH_BASELINE ? path.resolve(process.env.EVTSTORE_BENCH_BASELINE) : undefined

/** @param {string} impl */
function rootOf(impl) {
  if (impl === 'base') {
    if (!BASE) throw new Error('the base implementation needs EVTSTORE_BENCH_BASELINE')
    return BASE
  }
  return ROOT
}

/** @param {string} impl 'orig' | 'ours' | 'base' */
function api(impl) {
  if (impl === 'orig') return require('evtstore')
  return require(rootOf(impl))
}

/**
 * @param {string} impl
 * @param {string} name provider/<name>
 */
function providerModule(impl, name) {
  if (impl === 'orig') return require(`evtstore/provider/${name}`)
  return require(path.join(rootOf(impl), 'provider', name))
}

/** @param {string} url */
function pgPool(url) {
  const { Pool } = require('pg')
  return new Pool({ connectionString: url, max: 10 })
}

/**
 * What open() returns for a provider on a client of its own (a knex
 * instance, a pg Pool, a Driver): once the provider is ready; closing it
 * closes the provider (where it has close()), then releases the client.
 * @param {any} root the package's API
 * @param {any} provider
 * @param {() => Promise<unknown>} release
 */
async function opened(root, provider, release) {
  if (provider.ready) await provider.ready
  return {
    api: root,
    provider,
    close: async () => {
      if (typeof provider.close === 'function') await provider.close()
      await release()
    },
  }
}

/**
 * @param {string} impl 'orig' | 'ours' | 'base'
 * @param {string} store 'memory' | 'sqlite' | 'knex-sqlite' | 'sqlite-normal' | 'pg' | 'mysql' | 'neo4j' | 'mongo'
 * @param {{ initEvents?: any[], file?: string, url?: string, events?: string, bookmarks?: string }} ctx
 * @returns {Promise<{ api: any, provider: any, scratch?: () => any, close: () => Promise<void> }>}
 */
async function open(impl, store, ctx) {
  const root = api(impl)

  if (store === 'memory') {
    const { createProvider } = providerModule(impl, 'memory')
    const provider = createProvider(ctx.initEvents ? ctx.initEvents : undefined)
    // a second, empty store of the same kind: warm-ups run there
    return { api: root, provider, scratch: () => createProvider(), close: async () => {} }
  }

  if (store === 'sqlite' || store === 'knex-sqlite' || store === 'sqlite-normal') {
    const file = /** @type {string} */ (ctx.file)
    if (impl !== 'orig' && store !== 'knex-sqlite') {
      // the native-first form; 'sqlite-normal': the option that skips the sync
      const synchronous = store === 'sqlite-normal' ? 'normal' : 'full'
      const { createProvider, migrate } = providerModule(impl, 'sqlite')
      await migrate({ file })
      const provider = createProvider({ file, synchronous })
      await provider.ready
      return { api: root, provider, close: () => provider.close() }
    }
    // evtstore's knex provider on sqlite3: what evtstore users run (and,
    // for ours, the drop-in form that reads the file name from knex)
    const knex = require('knex')
    const db = knex({ client: 'sqlite3', connection: { filename: file }, useNullAsDefault: true })
    const { createProvider, migrate } = providerModule(impl, 'knex')
    await migrate({ client: db, events: 'events', bookmarks: 'bookmarks' })
    const provider = createProvider({ events: () => db('events'), bookmarks: () => db('bookmarks') })
    return opened(root, provider, () => db.destroy())
  }

  if (store === 'pg') {
    const url = /** @type {string} */ (ctx.url)
    const events = /** @type {string} */ (ctx.events)
    const bookmarks = /** @type {string} */ (ctx.bookmarks)
    if (impl === 'orig') {
      const pool = pgPool(url)
      const { createProvider } = providerModule('orig', 'pg')
      const provider = createProvider({ client: pool, events, bookmarks })
      return { api: root, provider, close: () => pool.end() }
    }
    // the drop-in form: the same pg Pool and the same provider module path
    // as the original, so both connect the same way (a pg Pool without
    // `ssl` means no TLS, for node-postgres and for ours alike)
    const pool = pgPool(url)
    const mod = providerModule(impl, 'pg')
    if (typeof mod.migrate === 'function') {
      // the tables exist already (evtstore's layout); ours may add what it wants
      try {
        await mod.migrate({ client: pool, events, bookmarks })
      } catch (err) {
        process.stderr.write(`ours pg migrate: ${err && err.message}\n`)
      }
    }
    const provider = mod.createProvider({ client: pool, events, bookmarks })
    return opened(root, provider, () => pool.end())
  }

  if (store === 'mysql') {
    // both through evtstore's knex provider on the same kind of knex mysql2
    // instance: the drop-in form (ours reads the connection from knex and
    // stores through its native engine)
    const knex = require('knex')
    const db = knex({ client: 'mysql2', connection: ctx.url, pool: { min: 0, max: 10 } })
    const events = /** @type {string} */ (ctx.events)
    const bookmarks = /** @type {string} */ (ctx.bookmarks)
    const { createProvider } = providerModule(impl, 'knex')
    const provider = createProvider({ events: () => db(events), bookmarks: () => db(bookmarks) })
    return opened(root, provider, () => db.destroy())
  }

  if (store === 'neo4j') {
    // both through the same kind of neo4j-driver Driver: evtstore queries
    // through it; ours reads its address and login and opens its own Bolt
    // connections (the drop-in form)
    const driver = neo4jDriver(/** @type {string} */ (ctx.url))
    const labels = { events: /** @type {string} */ (ctx.events), bookmarks: /** @type {string} */ (ctx.bookmarks) }
    const mod = providerModule(impl, 'neo4j')
    await mod.migrate({ client: driver, ...labels })
    const provider = mod.createProvider({ client: driver, ...labels })
    return opened(root, provider, () => driver.close())
  }

  if (store === 'mongo') {
    // ours only (evtstore's MongoDB provider needs server-filled Timestamps):
    // the native-first form, a URL naming a database of this run's own
    if (impl === 'orig') throw new Error("evtstore's MongoDB provider is not measured (it needs server-filled Timestamps)")
    const url = /** @type {string} */ (ctx.url)
    const mod = providerModule(impl, 'mongo')
    await mod.migrate({ url })
    const provider = mod.createProvider({ url })
    await provider.ready
    return { api: root, provider, close: () => provider.close() }
  }

  throw new Error(`unknown store ${store}`)
}

/** @param {string} url bolt://... (the test servers have no authentication) */
function neo4jDriver(url) {
  const neo4j = require('neo4j-driver')
  return neo4j.driver(url, neo4j.auth.basic('neo4j', 'password'), { logging: { level: 'error', logger() {} } })
}

module.exports = { open, api, providerModule, pgPool, neo4jDriver, ROOT, BASE }
