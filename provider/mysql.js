'use strict'
// provider/mysql (evtstore-rs's own, native-first): MySQL 8 or MariaDB 10.6+
// by url, on evtstore's knex tables. The Rust core stores the events through
// its own connection pool; no JavaScript MySQL driver is needed.

const { fromMysqlOptions } = require('../lib/engines/mysql')
const { checkProviderOptions, providerOn } = require('../lib/engines/provider')
const { migrate: migrateTarget } = require('../lib/engines/shared-stores')

/**
 * A provider on MySQL or MariaDB, run by the Rust core.
 * @param {{ url: string, events?: string, bookmarks?: string, limit?: number, onError?: Function, maxConnections?: number }} opts
 */
function createProvider(opts) {
  const what = 'mysql createProvider'
  const target = fromMysqlOptions(opts, what)
  checkProviderOptions(opts, what)
  return providerOn(target, { driver: 'mysql', limit: opts.limit, onError: opts.onError })
}

/**
 * Creates the events and bookmarks tables and their indexes when missing
 * (never drops or rewrites anything; evtstore's tables are kept as they are).
 * @param {{ url: string, events?: string, bookmarks?: string }} opts
 */
async function migrate(opts) {
  await migrateTarget(fromMysqlOptions(opts, 'mysql migrate'))
}

module.exports = { createProvider, migrate }
