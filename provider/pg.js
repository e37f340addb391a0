'use strict'
// evtstore's provider/pg: a node-postgres Pool (or Client), or a url. The Rust
// core stores the events through its own connection pool: the pg object only
// tells where the database is (host, port, user, password, database, TLS,
// connectionString), and pg itself is never required here.

const { readTarget, checkProviderOptions, postgresProvider, postgresMigrate } = require('../lib/postgres-provider')
const { fromPg, isPgPool, isPgClient } = require('../lib/postgres-config')
const { codedError } = require('../lib/errors')
const { describe } = require('../lib/util')

/** @param {string} what */
function form(what) {
  return {
    what,
    driverKey: 'client',
    example: 'a node-postgres Pool: { client: new Pool(...) }',
    /** @param {any} client */
    check(client) {
      if (!isPgPool(client) && !isPgClient(client)) {
        throw codedError(
          'INVALID_ARGUMENT',
          `${what}: "client" must be a node-postgres Pool or Client (new Pool(...)), got ${describe(client)}; ` +
            "or give { url: 'postgres://user:password@host:5432/database' }",
          TypeError
        )
      }
    },
    /** @param {any} client */
    read: (client) => fromPg(client, what),
  }
}

/**
 * A provider on PostgreSQL, run by the Rust core.
 * @param {{
 *   url?: string, client?: any, events?: string, bookmarks?: string,
 *   limit?: number, onError?: Function, maxConnections?: number,
 * }} opts
 */
function createProvider(opts) {
  const what = 'pg createProvider'
  const target = readTarget(opts, form(what))
  checkProviderOptions(opts, what)
  return postgresProvider(target, { driver: 'pg', limit: opts.limit, onError: opts.onError })
}

/**
 * @param {any} opts
 * @param {string} what
 */
async function migrateWith(opts, what) {
  // as in evtstore: with a pg object and neither table named, nothing is done
  if (opts && opts.client !== undefined && opts.url === undefined && !opts.events && !opts.bookmarks) return
  await postgresMigrate(readTarget(opts, form(what)))
}

/**
 * Creates the events and bookmarks tables and their indexes when missing
 * (never drops anything; an evtstore database is left as it is).
 * @param {{ url?: string, client?: any, events?: string, bookmarks?: string }} opts
 */
function migrate(opts) {
  return migrateWith(opts, 'pg migrate')
}

/** migrate, named for a Pool (as in evtstore). */
function migratePool(opts) {
  return migrateWith(opts, 'pg migratePool')
}

/** migrate, named for a Client (as in evtstore). */
function migrateClient(opts) {
  return migrateWith(opts, 'pg migrateClient')
}

module.exports = { createProvider, migrate, migratePool, migrateClient }
