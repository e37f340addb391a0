'use strict'
// evtstore's provider/knex. The knex instance only tells which database and
// tables: the Rust core reads and writes them (SQLite clients only, so far).

const { knexClient, builderFrom, notSupported } = require('../lib/engines/knex')
const { isSqliteKnex, fromKnex } = require('../lib/engines/sqlite/knex')
const { readDurability } = require('../lib/engines/sqlite')
const { tableName } = require('../lib/engines/tables')
const { checkProviderOptions, providerOn } = require('../lib/engines/provider')
const { migrate: migrateTarget } = require('../lib/engines/shared-stores')
const { codedError } = require('../lib/errors')

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
  if (!isSqliteKnex(client)) throw notSupported(client)
  if (bookmarks.client !== client) {
    throw codedError(
      'INVALID_ARGUMENT',
      'evtstore-rs knex provider: "events" and "bookmarks" must query the same knex instance',
      TypeError
    )
  }
  const durability = readDurability(opts, 'knex createProvider')
  const target = fromKnex(client, { events: events.table, bookmarks: bookmarks.table }, durability)
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
  if (!isSqliteKnex(client)) throw notSupported(client)
  if (!opts.bookmarks && !opts.events) return
  const events = tableName(opts.events || 'events', 'events')
  const bookmarks = tableName(opts.bookmarks || 'bookmarks', 'bookmarks')
  // only the tables that are named, as evtstore does
  const durability = readDurability(opts, 'knex migrate')
  await migrateTarget(await fromKnex(client, { events, bookmarks }, durability), {
    events: !!opts.events,
    bookmarks: !!opts.bookmarks,
  })
}

module.exports = { createProvider, migrate }
