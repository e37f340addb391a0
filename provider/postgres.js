'use strict'
// evtstore's provider/postgres: a postgres.js `sql` instance, or a url. The
// Rust core stores the events through its own connection pool: the `sql`
// instance only tells where the database is, and postgres.js itself is never
// required here.

const { fromPostgresOptions } = require('../lib/engines/postgres')
const { checkProviderOptions, providerOn } = require('../lib/engines/provider')
const { migrate: migrateTarget } = require('../lib/engines/shared-stores')

/**
 * A provider on PostgreSQL, run by the Rust core.
 * @param {{
 *   url?: string, sql?: any, events?: string, bookmarks?: string,
 *   limit?: number, onError?: Function, maxConnections?: number,
 * }} opts
 */
function createProvider(opts) {
  const what = 'postgres createProvider'
  const target = fromPostgresOptions(opts, what, 'sql')
  checkProviderOptions(opts, what)
  return providerOn(target, { driver: 'postgres', limit: opts.limit, onError: opts.onError })
}

/**
 * Creates the events and bookmarks tables and their indexes when missing
 * (never drops anything; an evtstore database is left as it is). With a
 * postgres.js instance and neither table named, nothing is done, as in evtstore.
 * @param {{ url?: string, sql?: any, events?: string, bookmarks?: string }} opts
 */
async function migrate(opts) {
  if (opts && opts.sql !== undefined && opts.url === undefined && !opts.events && !opts.bookmarks) return
  await migrateTarget(fromPostgresOptions(opts, 'postgres migrate', 'sql'))
}

module.exports = { createProvider, migrate }
