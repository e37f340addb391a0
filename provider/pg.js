'use strict'
// evtstore's provider/pg: a node-postgres Pool (or Client), or a url. The Rust
// core stores the events through its own connection pool: the pg object only
// tells where the database is, and pg itself is never required here.

const { fromPostgresOptions } = require('../lib/engines/postgres')
const { checkProviderOptions, providerOn } = require('../lib/engines/provider')
const { migrate: migrateTarget } = require('../lib/engines/shared-stores')

/**
 * A provider on PostgreSQL, run by the Rust core.
 * @param {{
 *   url?: string, client?: any, events?: string, bookmarks?: string,
 *   limit?: number, onError?: Function, maxConnections?: number,
 * }} opts
 */
function createProvider(opts) {
  const what = 'pg createProvider'
  const target = fromPostgresOptions(opts, what, 'client')
  checkProviderOptions(opts, what)
  return providerOn(target, { driver: 'pg', limit: opts.limit, onError: opts.onError })
}

/**
 * @param {any} opts
 * @param {string} what
 */
async function migrateWith(opts, what) {
  // as in evtstore: with a pg object and neither table named, nothing is done
  if (opts && opts.client !== undefined && opts.url === undefined && !opts.events && !opts.bookmarks) return
  await migrateTarget(fromPostgresOptions(opts, what, 'client'))
}

/**
 * Creates the events and bookmarks tables and their indexes when missing
 * (never drops anything; an evtstore database is left as it is).
 * @param {{ url?: string, client?: any, events?: string, bookmarks?: string }} opts
 */
function migrate(opts) {
  return migrateWith(opts, 'pg migrate')
}

/**
 * migrate, named for a Pool (as in evtstore).
 * @param {{ url?: string, client?: any, events?: string, bookmarks?: string }} opts
 */
function migratePool(opts) {
  return migrateWith(opts, 'pg migratePool')
}

/**
 * migrate, named for a Client (as in evtstore).
 * @param {{ url?: string, client?: any, events?: string, bookmarks?: string }} opts
 */
function migrateClient(opts) {
  return migrateWith(opts, 'pg migrateClient')
}

module.exports = { createProvider, migrate, migratePool, migrateClient }
