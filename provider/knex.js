'use strict'

const { loadNative } = require('../lib/native')
const { createNativeProvider } = require('../lib/native-provider')
const { acquire, migrateStore, tableName, fileName } = require('../lib/sqlite-stores')
const { codedError } = require('../lib/errors')
const { assertPositiveInteger, describe, isThenable } = require('../lib/util')

const SQLITE_CLIENTS = new Set(['sqlite3', 'sqlite', 'better-sqlite3'])

/**
 * The knex Client object behind a knex instance or a query builder.
 * @param {any} value
 */
function knexClient(value) {
  const client = value && value.client
  if (!client || typeof client !== 'object' || !client.config || typeof client.config !== 'object') return undefined
  return client
}

/** @param {any} client a knex Client */
function clientName(client) {
  const configured = client.config.client
  if (typeof configured === 'string') return configured
  if (typeof client.driverName === 'string') return client.driverName
  if (typeof client.dialect === 'string') return client.dialect
  return String(configured && configured.name)
}

/** @param {any} client */
function isSqlite(client) {
  return SQLITE_CLIENTS.has(clientName(client)) || client.dialect === 'sqlite3'
}

/** @param {any} client */
function notSupported(client) {
  return codedError(
    'NOT_SUPPORTED',
    `evtstore-rs knex provider: the knex client "${clientName(client)}" is not supported yet; ` +
      'this version stores events through knex only for SQLite (clients sqlite3 and better-sqlite3). ' +
      'Available providers: evtstore/provider/memory, evtstore/provider/sqlite and evtstore/provider/knex (SQLite).'
  )
}

/**
 * The database file a knex SQLite client connects to.
 * @param {any} client
 * @returns {Promise<string>}
 */
async function sqliteFile(client) {
  let connection = client.config.connection
  if (typeof connection === 'function') connection = connection()
  if (isThenable(connection)) connection = await connection
  const file = typeof connection === 'string' ? connection : connection && connection.filename
  if (typeof file !== 'string' || file === '') {
    throw codedError(
      'INVALID_ARGUMENT',
      'evtstore-rs knex provider: the knex SQLite connection has no file name ' +
        "(expected connection: { filename: 'events.db' } or ':memory:')",
      TypeError
    )
  }
  if (/^file:/i.test(file)) {
    throw codedError(
      'NOT_SUPPORTED',
      `evtstore-rs knex provider: SQLite URI file names (${file}) are not supported yet: use a plain file name`
    )
  }
  return fileName(file)
}

/**
 * @param {any} factory
 * @param {string} what
 */
function builderFrom(factory, what) {
  if (typeof factory !== 'function') {
    throw codedError(
      'INVALID_ARGUMENT',
      `evtstore-rs knex provider: "${what}" must be a function returning a knex query builder, ` +
        `such as () => db('${what}'), got ${describe(factory)}`,
      TypeError
    )
  }
  const qb = factory()
  const client = knexClient(qb)
  const table = qb && qb._single && qb._single.table
  if (!client || table === undefined) {
    throw codedError(
      'INVALID_ARGUMENT',
      `evtstore-rs knex provider: "${what}" must return a knex query builder on one table, such as db('${what}')`,
      TypeError
    )
  }
  return { client, table: tableName(table, what) }
}

/**
 * evtstore's knex provider signature. SQLite databases are read and written
 * by the Rust core (the knex instance only tells which file and tables).
 *
 * @param {{ events: () => any, bookmarks: () => any, limit?: number, onError?: Function }} opts
 */
function createProvider(opts) {
  if (!opts || typeof opts !== 'object') {
    throw codedError(
      'INVALID_ARGUMENT',
      "evtstore-rs knex provider: expected { events: () => db('events'), bookmarks: () => db('bookmarks') }",
      TypeError
    )
  }
  const events = builderFrom(opts.events, 'events')
  const bookmarks = builderFrom(opts.bookmarks, 'bookmarks')
  if (opts.limit !== undefined) assertPositiveInteger(opts.limit, 'knex createProvider: limit')
  if (opts.onError !== undefined && typeof opts.onError !== 'function') {
    throw codedError(
      'INVALID_ARGUMENT',
      `knex createProvider: onError must be a function, got ${describe(opts.onError)}`,
      TypeError
    )
  }
  const client = events.client
  if (!isSqlite(client)) throw notSupported(client)
  if (bookmarks.client !== client) {
    throw codedError(
      'INVALID_ARGUMENT',
      'evtstore-rs knex provider: "events" and "bookmarks" must query the same knex instance',
      TypeError
    )
  }
  loadNative()

  /** @type {(() => Promise<void>) | undefined} */
  let release
  let closed = false
  const store = sqliteFile(client).then((file) => {
    const held = acquire({ file, events: events.table, bookmarks: bookmarks.table, scope: client })
    if (closed) {
      held.release().catch(() => {})
    }
    release = held.release
    return held.store
  })

  return createNativeProvider({
    driver: 'knex',
    store,
    limit: opts.limit,
    onError: opts.onError,
    close: async () => {
      closed = true
      await store.catch(() => undefined)
      if (release) await release()
    },
  })
}

/**
 * Creates the named tables when missing, in the database of the knex instance.
 * Like evtstore, a table that is not named (or named '') is not created.
 *
 * @param {{ client: any, events?: string, bookmarks?: string }} opts
 */
async function migrate(opts) {
  const client = knexClient(opts && opts.client)
  if (!client) {
    throw codedError(
      'INVALID_ARGUMENT',
      'evtstore-rs knex migrate: "client" must be a knex instance',
      TypeError
    )
  }
  if (!isSqlite(client)) throw notSupported(client)
  if (!opts.bookmarks && !opts.events) return
  const events = tableName(opts.events || 'events', 'events')
  const bookmarks = tableName(opts.bookmarks || 'bookmarks', 'bookmarks')
  const file = await sqliteFile(client)
  // only the tables that are named, as evtstore does
  const only = { events: !!opts.events, bookmarks: !!opts.bookmarks }
  await migrateStore({ file, events, bookmarks, scope: client, only })
}

module.exports = { createProvider, migrate }
