'use strict'
// evtstore's provider/mongo: Collections of the official `mongodb` driver (or
// Promises of them), or natively a url. The Rust core stores the events
// through its own connection pool; the driver objects only tell where the
// collections are, and the `mongodb` package is never required here.
//
// Positions are 64-bit integers taken from a counter document (no
// transactions, change streams or server-filled Timestamps are needed):
// docs/providers/mongo.md says how, and how `migrate` turns evtstore's BSON
// Timestamp positions into integers.

const { fromMongoOptions, fromCollections } = require('../lib/engines/mongo')
const { checkProviderOptions, providerOn } = require('../lib/engines/provider')
const { migrate: migrateTarget } = require('../lib/engines/shared-stores')
const { isPlainObject } = require('../lib/util')

/**
 * A provider on MongoDB, run by the Rust core.
 * @param {{
 *   url?: string, database?: string, events?: any, bookmarks?: any,
 *   limit?: number, onError?: Function, abandonAfterMs?: number,
 * }} opts
 */
function createProvider(opts) {
  const what = 'mongo createProvider'
  const target = fromMongoOptions(opts, what)
  checkProviderOptions(opts, what)
  return providerOn(target, { driver: 'mongo', limit: opts.limit, onError: opts.onError })
}

/**
 * Creates the indexes (evtstore's, and one on position), turns evtstore's
 * Timestamp positions into integers once, and creates the position counter.
 * Idempotent; never drops anything.
 *
 * evtstore's form: migrate(eventsCollection, bookmarksCollection), either a
 * Promise. Native-first: migrate({ url, database?, events?, bookmarks? }).
 * @param {any} events
 * @param {any} [bookmarks]
 */
async function migrate(events, bookmarks) {
  const what = 'mongo migrate'
  if (isPlainObject(events) && bookmarks === undefined) {
    await migrateTarget(fromMongoOptions(events, what))
    return
  }
  await migrateTarget(fromCollections(events, bookmarks, what))
}

module.exports = { createProvider, migrate }
