'use strict'
// The MySQL/MariaDB adapter: what the user hands in (a url, or the connection
// settings of a knex mysql/mysql2 client, and table names) -> the typed
// options of Store.open({ mysql }): host or socket, port, user, password,
// database, sslMode and certificates as PEM text. The mysql and mysql2
// packages are never required here.

const fs = require('fs')
const { codedError } = require('../../errors')
const { assertPositiveInteger, isPlainObject, describe, quiet } = require('../../util')
const { readTables } = require('../tables')

/**
 * @typedef {object} MysqlSettings
 * @property {string} host
 * @property {number} port
 * @property {string} [socket]
 * @property {string} user
 * @property {string} [password]
 * @property {string} database
 * @property {string} [sslMode]
 * @property {string} [sslCa] PEM text
 * @property {string} [sslCert] PEM text
 * @property {string} [sslKey] PEM text
 * @property {number} [connectTimeout] seconds
 * @property {number} [maxConnections]
 */

/** @param {string} message */
function invalid(message) {
  return codedError('INVALID_ARGUMENT', message, TypeError)
}

/** @param {any} value */
function given(value) {
  return value !== undefined && value !== null && value !== ''
}

/**
 * @param {any} value
 * @param {string} what
 * @returns {number}
 */
function portOf(value, what) {
  const port = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid(`${what}: the port must be an integer from 1 to 65535, got ${describe(value)}`)
  }
  return port
}

/**
 * PEM text from a string, a Buffer or an array of them (Node's tls options).
 * @param {any} value
 * @param {string} what
 * @returns {string}
 */
function pemText(value, what) {
  if (Array.isArray(value)) return value.map((v) => pemText(v, what)).join('\n')
  if (typeof value === 'string') return value
  if (value && ArrayBuffer.isView(value)) return value.toString()
  throw invalid(`${what} is ${describe(value)}: give PEM text (a string or a Buffer)`)
}

/**
 * The contents of a certificate or key file named in a url.
 * @param {string} file
 * @param {string} what
 */
function readPemFile(file, what) {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch (err) {
    throw codedError('INVALID_ARGUMENT', `${what}: cannot read ${file}: ${/** @type {any} */ (err).message}`, TypeError)
  }
}

const SSL_MODES = new Set(['disabled', 'preferred', 'required', 'verify_ca', 'verify_identity'])

/**
 * Settings from `mysql://user:password@host:port/database?ssl-mode=REQUIRED`
 * (also `mariadb://`); `ssl-ca`, `ssl-cert`, `ssl-key` name PEM files,
 * `socket` a Unix socket.
 * @param {any} url
 * @param {string} what
 * @returns {MysqlSettings}
 */
function fromUrl(url, what) {
  if (typeof url !== 'string') throw invalid(`${what}: "url" must be a string such as mysql://user:password@host:3306/database, got ${describe(url)}`)
  let u
  try {
    u = new URL(url)
  } catch {
    throw invalid(`${what}: "url" is not a URL: expected mysql://user:password@host:3306/database`)
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
    throw invalid(`${what}: "url" must start with mysql:// (or mariadb://), got ${u.protocol}//`)
  }
  const decode = (/** @type {string} */ s) => {
    try {
      return decodeURIComponent(s)
    } catch {
      throw invalid(`${what}: the url has a malformed %-escape`)
    }
  }
  /** @type {MysqlSettings} */
  const s = {
    host: decode(u.hostname.replace(/^\[|\]$/g, '')) || 'localhost',
    port: u.port ? portOf(u.port, what) : 3306,
    user: decode(u.username),
    database: decode(u.pathname.replace(/^\//, '')),
  }
  if (u.password) s.password = decode(u.password)
  const param = (/** @type {string[]} */ ...names) => {
    for (const n of names) {
      const v = u.searchParams.get(n)
      if (v !== null) return v
    }
    return undefined
  }
  const mode = param('ssl-mode', 'sslMode', 'sslmode')
  if (mode !== undefined) {
    const m = mode.toLowerCase().replace(/-/g, '_')
    if (!SSL_MODES.has(m)) throw invalid(`${what}: ssl-mode ${describe(mode)} is not one of ${[...SSL_MODES].join(', ')}`)
    s.sslMode = m
  }
  const ca = param('ssl-ca', 'sslCa')
  const cert = param('ssl-cert', 'sslCert')
  const key = param('ssl-key', 'sslKey')
  if (ca) s.sslCa = readPemFile(ca, `${what}: ssl-ca`)
  if (cert) s.sslCert = readPemFile(cert, `${what}: ssl-cert`)
  if (key) s.sslKey = readPemFile(key, `${what}: ssl-key`)
  const socket = param('socket')
  if (socket) s.socket = socket
  return s
}

/**
 * Settings from the connection options of the mysql or mysql2 package (what
 * a knex mysql/mysql2 client is configured with): host, port, socketPath,
 * user, password, database, ssl (TLS options), connectTimeout (ms), or a
 * `uri`, filled with those packages' defaults (localhost, 3306).
 * @param {Record<string, any>} config
 * @param {string} prefix how the settings are named in messages
 * @param {string} what
 * @returns {MysqlSettings}
 */
function fromMysqlConfig(config, prefix, what) {
  const base = given(config.uri) ? fromUrl(config.uri, `${what} (${prefix}.uri)`) : undefined
  /** @type {MysqlSettings} */
  const s = base || { host: 'localhost', port: 3306, user: '', database: '' }
  if (given(config.host)) s.host = String(config.host)
  if (given(config.port)) s.port = portOf(config.port, `${what} (${prefix}.port)`)
  if (given(config.socketPath)) s.socket = String(config.socketPath)
  if (given(config.user)) s.user = String(config.user)
  if (given(config.password)) s.password = String(config.password)
  if (given(config.database)) s.database = String(config.database)
  if (Number.isFinite(config.connectTimeout) && config.connectTimeout > 0) {
    s.connectTimeout = Math.ceil(config.connectTimeout / 1000)
  }
  const ssl = config.ssl
  if (typeof ssl === 'string') {
    throw codedError(
      'NOT_SUPPORTED',
      `${what}: ${prefix}.ssl profile ${describe(ssl)} is not supported: give TLS options ({ ca, cert, key, rejectUnauthorized })`
    )
  }
  if (isPlainObject(ssl)) {
    s.sslMode = ssl.rejectUnauthorized === false ? 'required' : 'verify_identity'
    if (given(ssl.ca)) s.sslCa = pemText(ssl.ca, `${prefix}.ssl.ca`)
    if (given(ssl.cert)) s.sslCert = pemText(ssl.cert, `${prefix}.ssl.cert`)
    if (given(ssl.key)) s.sslKey = pemText(ssl.key, `${prefix}.ssl.key`)
  } else if (ssl === true) {
    s.sslMode = 'verify_identity'
  }
  return s
}

/**
 * The store target of MySQL settings and tables. Stores with the same
 * options are one store.
 * @param {MysqlSettings} s
 * @param {import('../tables').Tables} tables
 * @param {string} what
 * @returns {import('../shared-stores').StoreTarget}
 */
function mysqlTarget(s, { events, bookmarks }, what) {
  if (!s.user) throw invalid(`${what}: no user name: put it in the url (mysql://user:password@host/database)`)
  if (!s.database) throw invalid(`${what}: no database: put it in the url (mysql://user:password@host/database)`)
  /** @type {import('../../native').MysqlOptions} */
  const o = { host: s.host, port: s.port, user: s.user, database: s.database, events, bookmarks }
  for (const key of /** @type {const} */ (['socket', 'password', 'sslMode', 'sslCa', 'sslCert', 'sslKey', 'connectTimeout', 'maxConnections'])) {
    if (s[key] !== undefined) /** @type {any} */ (o)[key] = s[key]
  }
  return { key: `mysql\0${JSON.stringify(o)}`, options: { mysql: o } }
}

/**
 * Checks the options of provider/mysql ({ url, events?, bookmarks?,
 * maxConnections? }) at once.
 * @param {any} opts
 * @param {string} what e.g. 'mysql createProvider'
 * @returns {Promise<import('../shared-stores').StoreTarget>}
 */
function fromMysqlOptions(opts, what) {
  if (!isPlainObject(opts) || opts.url === undefined) {
    throw invalid(`${what}: expected { url: 'mysql://user:password@host:3306/database' }, got ${describe(opts)}`)
  }
  const tables = readTables(opts)
  const settings = fromUrl(opts.url, what)
  if (opts.maxConnections !== undefined) {
    assertPositiveInteger(opts.maxConnections, `${what}: maxConnections`)
    settings.maxConnections = opts.maxConnections
  }
  return quiet(Promise.resolve(mysqlTarget(settings, tables, what)))
}

module.exports = { fromMysqlOptions, fromMysqlConfig, fromUrl, mysqlTarget }
