'use strict'
// PostgreSQL settings from a postgres.js instance (`postgres(...)`, version
// 3). postgres.js is never required here: only the properties of the user's
// `sql` are read.

const { invalid, notSupported, nonEmpty, portNumber } = require('./settings')
const { fromTlsOptions } = require('./tls')
const { describe, isThenable, isPlainObject } = require('../../util')

/**
 * postgres.js's `ssl` option: false, true, 'require', 'allow', 'prefer',
 * 'verify-full', or Node TLS options. 'require', 'allow' and 'prefer' skip the
 * certificate check there (only 'prefer' falls back to plain text); any other
 * truthy value checks certificate and host name.
 * @param {any} ssl
 * @returns {import('./tls').Tls}
 */
function postgresJsSsl(ssl) {
  if (ssl === undefined || ssl === null || ssl === false || ssl === 'disable' || ssl === 'false' || ssl === '') {
    return { sslmode: 'disable' }
  }
  if (ssl === 'require' || ssl === 'allow') return { sslmode: 'require' }
  if (ssl === 'prefer') return { sslmode: 'prefer' }
  if (isPlainObject(ssl)) return fromTlsOptions(ssl, 'sql.options.ssl')
  return { sslmode: 'verify-full' }
}

/**
 * Runtime parameters as the value of libpq's `options` (-c name=value ...).
 * @param {Record<string, any>} connection
 */
function runtimeOptions(connection) {
  const parts = []
  for (const [key, value] of Object.entries(connection)) {
    if (value === undefined || value === null) continue
    if (key === 'application_name') continue
    if (key === 'options') {
      parts.push(String(value))
      continue
    }
    const escaped = String(value).replace(/\\/g, '\\\\').replace(/ /g, '\\ ')
    parts.push(`-c ${key}=${escaped}`)
  }
  return parts.join(' ')
}

/**
 * Whether `sql` looks like a postgres.js instance.
 * @param {any} sql
 */
function isPostgresJs(sql) {
  return (
    typeof sql === 'function' &&
    isPlainObject(sql.options) &&
    Array.isArray(sql.options.host) &&
    Array.isArray(sql.options.port)
  )
}

/**
 * Settings from a postgres.js instance. postgres.js has already filled in
 * what the user left out (PGHOST, PGPORT, PGUSERNAME or PGUSER, PGPASSWORD,
 * PGDATABASE, localhost, 5432, the OS user): its `sql.options` is read as it
 * is. `pass` may be a function, possibly async.
 *
 * @param {any} sql
 * @param {string} what
 * @returns {Promise<import('./settings').Settings>}
 */
async function fromPostgresJs(sql, what) {
  assertPostgresJs(sql, what)
  const o = sql.options
  if (o.host.length !== 1) {
    throw notSupported(
      `${what}: a postgres.js instance on several hosts (${o.host.join(', ')}) is not supported yet: give it one host`
    )
  }
  const from = {
    host: 'sql.options.host',
    port: 'sql.options.port',
    user: 'sql.options.user',
    password: 'sql.options.pass',
    database: 'sql.options.database',
    sslmode: 'sql.options.ssl',
  }
  let host = String(o.host[0])
  let port = o.port[0]
  if (typeof o.path === 'string' && o.path !== '') {
    // postgres.js connects to the socket file itself: <dir>/.s.PGSQL.<port>
    const m = /^(.*)\/\.s\.PGSQL\.(\d+)$/.exec(o.path)
    if (!m) {
      throw notSupported(
        `${what}: sql.options.path ${describe(o.path)} is not supported: ` +
          'give the socket as <directory>/.s.PGSQL.<port>'
      )
    }
    host = m[1] || '/'
    port = Number(m[2])
    from.host = from.port = 'sql.options.path'
  }
  let pass = o.pass
  if (typeof pass === 'function') {
    from.password = 'sql.options.pass (a function)'
    pass = pass()
    if (isThenable(pass)) pass = await pass
  }
  if (nonEmpty(pass) && typeof pass !== 'string') {
    throw invalid(`${what}: the password (${from.password}) must be a string, got ${describe(pass)}`)
  }
  const { sslmode, ...certificates } = postgresJsSsl(o.ssl)
  if (!nonEmpty(o.user)) throw invalid(`${what}: sql.options.user is empty`)
  /** @type {import('./settings').Settings} */
  const settings = {
    host,
    port: portNumber(port, `${what} (${from.port})`),
    user: String(o.user),
    password: nonEmpty(pass) ? pass : undefined,
    database: nonEmpty(o.database) ? String(o.database) : String(o.user),
    sslmode,
    ...certificates,
    from,
  }
  const options = isPlainObject(o.connection) ? runtimeOptions(o.connection) : ''
  if (options) settings.options = options
  if (Number.isFinite(o.connect_timeout) && o.connect_timeout > 0) settings.connectTimeout = Math.ceil(o.connect_timeout)
  if (Number.isSafeInteger(o.max) && o.max > 0) settings.maxConnections = o.max
  // postgres.js's own switch for transaction-mode poolers
  if (o.prepare === false) settings.pgbouncer = true
  return settings
}

/**
 * Throws INVALID_ARGUMENT unless `sql` is a postgres.js instance.
 * @param {any} sql
 * @param {string} what
 */
function assertPostgresJs(sql, what) {
  if (!isPostgresJs(sql)) {
    throw invalid(
      `${what}: "sql" must be a postgres.js instance (const sql = postgres(...)), got ${describe(sql)}; ` +
        "or give { url: 'postgres://user:password@host:5432/database' }"
    )
  }
}

module.exports = { fromPostgresJs, assertPostgresJs }
