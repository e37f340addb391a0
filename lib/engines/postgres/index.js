'use strict'
// The PostgreSQL adapter: what the user hands in (a url, a postgres.js `sql`,
// a node-postgres Pool or Client, and table names) -> the typed options of
// Store.open({ postgres }), read once: host, port, user, password, database,
// sslMode, certificates and keys as PEM text. Connection errors of the store
// get what the connection used and where each setting came from.

const { codedError } = require('../../errors')
const { assertPositiveInteger, isPlainObject, describe, quiet } = require('../../util')
const { readTables } = require('../tables')
const { describeSettings, redact } = require('./settings')
const { fromUrl } = require('./url')
const { readPem } = require('./tls')
const { fromPostgresJs, assertPostgresJs } = require('./postgres-js')
const { fromPg, assertPg } = require('./node-postgres')

/** @typedef {import('./settings').Settings} Settings */

/** The driver objects a provider entry takes beside a url. */
const DRIVERS = {
  sql: {
    example: 'a postgres.js instance: { sql: postgres(...) }',
    check: assertPostgresJs,
    read: fromPostgresJs,
  },
  client: {
    example: 'a node-postgres Pool: { client: new Pool(...) }',
    check: assertPg,
    read: fromPg,
  },
}

/** Errors about reaching the server: they get the settings used, and where each came from. */
const ABOUT_CONNECTING = new Set(['CANNOT_CONNECT', 'AUTH_FAILED', 'UNKNOWN_DATABASE', 'CONNECTION_LOST'])

const EXPLAINED = Symbol('evtstore-rs.pg.explained')

/**
 * Adds to a connection error what the connection used and where each setting
 * came from (never the password), and `err.connection` with the same facts.
 * @param {any} err
 * @param {Settings} settings
 */
function explain(err, settings) {
  if (!(err instanceof Error) || !ABOUT_CONNECTING.has(/** @type {any} */ (err).code)) return err
  const e = /** @type {any} */ (err)
  if (e[EXPLAINED]) return err
  Object.defineProperty(e, EXPLAINED, { value: true })
  e.message = `${e.message}\n  (evtstore-rs used: ${describeSettings(settings)})`
  if (typeof e.stack === 'string') {
    const firstLine = e.stack.indexOf('\n    at ')
    e.stack = `${e.name || 'Error'}: ${e.message}${firstLine >= 0 ? e.stack.slice(firstLine) : ''}`
  }
  e.connection = {
    host: settings.host,
    port: settings.port,
    user: settings.user,
    database: settings.database,
    sslmode: settings.sslmode,
  }
  return err
}

/**
 * The options of Store.open({ postgres }) for these settings and tables; the
 * certificate and key files named are read (only when TLS may be used).
 * @param {Settings} s
 * @param {import('../tables').Tables} tables
 * @returns {Promise<import('../../native').PostgresOptions>}
 */
async function storeOptions(s, { events, bookmarks }) {
  /** @type {import('../../native').PostgresOptions} */
  const o = { host: s.host, port: s.port, user: s.user, database: s.database, sslMode: s.sslmode }
  if (s.password !== undefined) o.password = s.password
  if (s.sslmode !== 'disable') {
    const [root, cert, key] = await Promise.all([
      readPem(s.sslRootCert, 'sslRootCert'),
      readPem(s.sslCert, 'sslCert'),
      readPem(s.sslKey, 'sslKey'),
    ])
    if (root !== undefined) o.sslRootCert = root
    if (cert !== undefined) o.sslCert = cert
    if (key !== undefined) o.sslKey = key
  }
  if (s.applicationName !== undefined) o.applicationName = s.applicationName
  if (s.options !== undefined) o.options = s.options
  if (s.connectTimeout !== undefined) o.connectTimeout = s.connectTimeout
  o.events = events
  o.bookmarks = bookmarks
  if (s.maxConnections !== undefined) o.maxConnections = s.maxConnections
  if (s.pgbouncer) o.pgbouncer = true
  return o
}

/**
 * The store target of settings (which may still be being read: a password
 * function) and tables. Stores with the same options are one store.
 * @param {Promise<Settings>} settings
 * @param {import('../tables').Tables} tables
 * @returns {Promise<import('../shared-stores').StoreTarget>}
 */
async function postgresTarget(settings, tables) {
  const s = await settings
  const explainError = (/** @type {any} */ err) => explain(err, s)
  let options
  try {
    options = await storeOptions(s, tables)
  } catch (err) {
    throw explainError(err)
  }
  return { key: `postgres\0${JSON.stringify(options)}`, options: { postgres: options }, explain: explainError }
}

/**
 * Checks a PostgreSQL provider's options (a url or a driver object, table
 * names, maxConnections) at once, and reads the connection settings.
 *
 * @param {any} opts
 * @param {string} what e.g. 'postgres createProvider'
 * @param {'sql' | 'client'} driverKey the driver object this entry takes beside a url
 * @returns {Promise<import('../shared-stores').StoreTarget>}
 */
function fromPostgresOptions(opts, what, driverKey) {
  const driver = DRIVERS[driverKey]
  if (!isPlainObject(opts)) {
    throw codedError(
      'INVALID_ARGUMENT',
      `${what}: expected an options object such as { url: 'postgres://user:password@host:5432/database' } ` +
        `or ${driver.example}, got ${describe(opts)}`,
      TypeError
    )
  }
  const hasUrl = opts.url !== undefined
  const hasDriver = opts[driverKey] !== undefined
  if (hasUrl && hasDriver) {
    throw codedError('INVALID_ARGUMENT', `${what}: give either "url" or "${driverKey}", not both`, TypeError)
  }
  if (!hasUrl && !hasDriver) {
    throw codedError(
      'INVALID_ARGUMENT',
      `${what}: "url" (postgres://user:password@host:5432/database) or "${driverKey}" (${driver.example}) is required`,
      TypeError
    )
  }
  const tables = readTables(opts)
  let maxConnections
  if (opts.maxConnections !== undefined) {
    assertPositiveInteger(opts.maxConnections, `${what}: maxConnections`)
    maxConnections = opts.maxConnections
  }
  /** @type {Promise<Settings>} */
  let settings
  if (hasUrl) {
    settings = Promise.resolve(fromUrl(opts.url, what))
  } else {
    driver.check(opts[driverKey], what)
    settings = driver.read(opts[driverKey], what)
  }
  if (maxConnections !== undefined) {
    const max = maxConnections
    settings = settings.then((s) => ({ ...s, maxConnections: max }))
  }
  return quiet(postgresTarget(settings, tables))
}

module.exports = { fromPostgresOptions, storeOptions, postgresTarget, explain, describeSettings, redact }
