'use strict'
// evtstore's provider/postgres: a postgres.js `sql` instance, or a url. The
// Rust core stores the events through its own connection pool: the `sql`
// instance only tells where the database is (host, port, user, password,
// database, TLS), and postgres.js itself is never required here.

const { readTarget, checkProviderOptions, postgresProvider, postgresMigrate } = require('../lib/postgres-provider')
const { fromPostgresJs, isPostgresJs } = require('../lib/postgres-config')
const { codedError } = require('../lib/errors')
const { describe } = require('../lib/util')

/** @param {string} what */
function form(what) {
  return {
    what,
    driverKey: 'sql',
    example: 'a postgres.js instance: { sql: postgres(...) }',
    /** @param {any} sql */
    check(sql) {
      if (!isPostgresJs(sql)) {
        throw codedError(
          'INVALID_ARGUMENT',
          `${what}: "sql" must be a postgres.js instance (const sql = postgres(...)), got ${describe(sql)}; ` +
            "or give { url: 'postgres://user:password@host:5432/database' }",
          TypeError
        )
      }
    },
    /** @param {any} sql */
    read: (sql) => fromPostgresJs(sql, what),
  }
}

/**
 * A provider on PostgreSQL, run by the Rust core.
 * @param {{
 *   url?: string, sql?: any, events?: string, bookmarks?: string,
 *   limit?: number, onError?: Function, maxConnections?: number,
 * }} opts
 */
function createProvider(opts) {
  const what = 'postgres createProvider'
  const target = readTarget(opts, form(what))
  checkProviderOptions(opts, what)
  return postgresProvider(target, { driver: 'postgres', limit: opts.limit, onError: opts.onError })
}

/**
 * Creates the events and bookmarks tables and their indexes when missing
 * (never drops anything; an evtstore database is left as it is). With a
 * postgres.js instance and neither table named, nothing is done, as in evtstore.
 * @param {{ url?: string, sql?: any, events?: string, bookmarks?: string }} opts
 */
async function migrate(opts) {
  if (opts && opts.sql !== undefined && opts.url === undefined && !opts.events && !opts.bookmarks) return
  await postgresMigrate(readTarget(opts, form('postgres migrate')))
}

module.exports = { createProvider, migrate }
