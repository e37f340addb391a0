'use strict'
// evtstore's provider/knex. The knex instance only tells which database and
// tables: the Rust core reads and writes them through the engine of the
// client (SQLite, PostgreSQL or MySQL); knex itself runs no query.

const { knexClient, builderFrom, notSupported } = require('../lib/engines/knex')
const { isSqliteKnex, fromKnex } = require('../lib/engines/sqlite/knex')
const { isPgKnex, fromKnexPg } = require('../lib/engines/postgres/knex')
const { isMysqlKnex, fromKnexMysql } = require('../lib/engines/mysql/knex')
const { readDurability } = require('../lib/engines/sqlite')
const { tableName } = require('../lib/engines/tables')
const { checkProviderOptions, providerOn } = require('../lib/engines/provider')
const { migrate: migrateTarget } = require('../lib/engines/shared-stores')
const { codedError } = require('../lib/errors')

/** @param {any} client a knex Client */
function assertSupported(client) {
  if (!isSqliteKnex(client) && !isPgKnex(client) && !isMysqlKnex(client)) throw notSupported(client)
}

/**
 * The store of a knex client's database and these tables, by the client's
 * engine; `durability` applies to SQLite files only.
 * @param {any} client
 * @param {import('../lib/engines/tables').Tables} tables
 * @param {any} opts the user's options (SQLite durability)
 * @param {string} what
 */
function knexTarget(client, tables, opts, what) {
  if (isSqliteKnex(client)) return fromKnex(client, tables, readDurability(opts, what))
  if (isPgKnex(client)) return fromKnexPg(client, tables)
  if (isMysqlKnex(client)) return fromKnexMysql(client, tables)
  throw notSupported(client)
}

/**
 * evtstore's knex provider signature, plus how an SQLite file is written
 * (`synchronous`, `journalMode`: as provider/sqlite).
 * @param {{ events: () => any, bookmarks: () => any, limit?: number, onError?: Function, synchronous?: string, journalMode?: string }} opts
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
  checkProviderOptions(opts, 'knex createProvider')
  const client = events.client
  assertSupported(client)
  if (bookmarks.client !== client) {
    throw codedError(
      'INVALID_ARGUMENT',
      'evtstore-rs knex provider: "events" and "bookmarks" must query the same knex instance',
      TypeError
    )
  }
  const target = knexTarget(client, { events: events.table, bookmarks: bookmarks.table }, opts, 'knex createProvider')
  return providerOn(target, { driver: 'knex', limit: opts.limit, onError: opts.onError })
}

/**
 * Creates the named tables when missing, in the database of the knex instance.
 * Like evtstore, a table that is not named (or named '') is not created.
 *
 * @param {{ client: any, events?: string, bookmarks?: string, synchronous?: string, journalMode?: string }} opts
 */
async function migrate(opts) {
  const client = knexClient(opts && opts.client)
  if (!client) {
    throw codedError('INVALID_ARGUMENT', 'evtstore-rs knex migrate: "client" must be a knex instance', TypeError)
  }
  assertSupported(client)
  if (!opts.bookmarks && !opts.events) return
  const events = tableName(opts.events || 'events', 'events')
  const bookmarks = tableName(opts.bookmarks || 'bookmarks', 'bookmarks')
  // only the tables that are named, as evtstore does
  await migrateTarget(await knexTarget(client, { events, bookmarks }, opts, 'knex migrate'), {
    events: !!opts.events,
    bookmarks: !!opts.bookmarks,
  })
}

module.exports = { createProvider, migrate }
