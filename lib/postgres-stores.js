'use strict'
// Native PostgreSQL stores, shared in the process: every provider on the same
// server, database, user and tables uses one native store (one pool, one
// LISTEN connection), so an append through one wakes the handlers of all.

const { loadPostgresStore } = require('./native')
const { fromNative } = require('./errors')
const { quiet } = require('./util')
const { toUrl, describeSettings } = require('./postgres-config')

/** Errors about reaching the server: they get the settings used, and where each came from. */
const ABOUT_CONNECTING = new Set(['CANNOT_CONNECT', 'AUTH_FAILED', 'UNKNOWN_DATABASE', 'CONNECTION_LOST'])

const EXPLAINED = Symbol('evtstore-rs.pg.explained')

/**
 * Adds to a connection error what the connection used and where each setting
 * came from (never the password), and `err.connection` with the same facts.
 * @param {any} err
 * @param {import('./postgres-config').Settings | undefined} settings
 */
function explain(err, settings) {
  if (!settings || !(err instanceof Error) || !ABOUT_CONNECTING.has(/** @type {any} */ (err).code)) return err
  const e = /** @type {any} */ (err)
  if (e[EXPLAINED]) return err
  Object.defineProperty(e, EXPLAINED, { value: true })
  e.message = `${e.message}\n  (evtstore-rs used: ${describeSettings(settings)})`
  if (typeof e.stack === 'string') {
    const firstLine = e.stack.indexOf('\n    at ')
    e.stack = `${e.name || 'Error'}: ${e.message}${firstLine >= 0 ? e.stack.slice(firstLine) : ''}`
  }
  e.connection = {
    host: settings.host,
    port: settings.port,
    user: settings.user,
    database: settings.database,
    sslmode: settings.sslmode,
  }
  return err
}

/** @type {Map<string, { store: Promise<any>, refs: number }>} */
const shared = new Map()

/**
 * @param {import('./postgres-config').Settings} settings
 * @param {string} events
 * @param {string} bookmarks
 */
async function open(settings, events, bookmarks) {
  const PostgresStore = loadPostgresStore()
  /** @type {{ url: string, events: string, bookmarks: string, maxConnections?: number }} */
  const options = { url: toUrl(settings), events, bookmarks }
  if (settings.maxConnections !== undefined) options.maxConnections = settings.maxConnections
  try {
    return await PostgresStore.open(options)
  } catch (err) {
    throw explain(fromNative(err), settings)
  }
}

/**
 * Opens (or shares) the native store for these settings and tables. Stores are
 * counted; the last release closes the pool.
 *
 * @param {Promise<import('./postgres-config').Settings>} settingsPromise
 * @param {{ events: string, bookmarks: string }} tables
 * @returns {{
 *   store: Promise<any>,
 *   settings: Promise<import('./postgres-config').Settings>,
 *   release: () => Promise<void>,
 * }}
 */
function acquire(settingsPromise, { events, bookmarks }) {
  /** @type {{ store: Promise<any>, refs: number } | undefined} */
  let held
  let key = ''
  let released = false
  const settings = quiet(Promise.resolve(settingsPromise))
  const store = quiet(
    settings.then((s) => {
      key = `${toUrl(s)}\0${events}\0${bookmarks}`
      let entry = shared.get(key)
      if (!entry) {
        const created = { store: quiet(open(s, events, bookmarks)), refs: 0 }
        entry = created
        shared.set(key, created)
        // a failed open is not kept: the next provider tries again
        created.store.catch(() => {
          if (shared.get(key) === created) shared.delete(key)
        })
      }
      entry.refs++
      held = entry
      if (released) void drop()
      return entry.store
    })
  )

  async function drop() {
    const entry = held
    if (!entry) return
    held = undefined
    entry.refs--
    if (entry.refs > 0) return
    if (shared.get(key) === entry) shared.delete(key)
    const s = await entry.store.catch(() => undefined)
    if (s) await s.close()
  }

  return {
    store,
    settings,
    release: async () => {
      if (released) return
      released = true
      await store.catch(() => undefined)
      await drop()
    },
  }
}

/**
 * Creates the missing tables and indexes through a store acquired for the call.
 * @param {Promise<import('./postgres-config').Settings>} settingsPromise
 * @param {{ events: string, bookmarks: string }} tables
 */
async function migrateStore(settingsPromise, tables) {
  const { store, settings, release } = acquire(settingsPromise, tables)
  try {
    const s = await store
    try {
      await s.migrate()
    } catch (err) {
      throw explain(fromNative(err), await settings)
    }
  } finally {
    await release()
  }
}

module.exports = { acquire, migrateStore, explain }
