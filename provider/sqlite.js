'use strict'
// evtstore-rs's provider on an SQLite database file, run by the Rust core.

const { fromSqliteOptions } = require('../lib/engines/sqlite')
const { checkProviderOptions, providerOn } = require('../lib/engines/provider')
const { migrate: migrateTarget } = require('../lib/engines/shared-stores')

/**
 * A provider on an SQLite database file. Stores on the same file and tables
 * are shared in the process. ':memory:' gives a private database with its
 * tables already created.
 *
 * @param {{ file?: string, url?: string, events?: string, bookmarks?: string, limit?: number, onError?: Function }} opts
 */
function createProvider(opts) {
  const target = fromSqliteOptions(opts, 'createProvider')
  checkProviderOptions(opts, 'sqlite createProvider')
  return providerOn(target, { driver: 'sqlite', limit: opts.limit, onError: opts.onError })
}

/**
 * Creates the events and bookmarks tables when missing (never drops).
 * @param {{ file?: string, url?: string, events?: string, bookmarks?: string }} opts
 */
async function migrate(opts) {
  await migrateTarget(fromSqliteOptions(opts, 'migrate'))
}

module.exports = { createProvider, migrate }
