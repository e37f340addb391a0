'use strict'
// The PostgreSQL connection settings the adapter reads from what the user
// hands in (url.js, postgres-js.js, node-postgres.js), each remembering where
// it came from so that a connection error can say which setting was wrong;
// and the small helpers those readers share.

const os = require('os')
const path = require('path')
const { codedError } = require('../../errors')
const { describe } = require('../../util')

const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']

/**
 * A certificate or key: PEM text the user handed in, or a file that holds it
 * (read when the store is opened).
 * @typedef {{ pem: string } | { file: string }} Certificate
 */

/**
 * @typedef {object} Settings
 * @property {string} host a host name or IP address, or a Unix socket directory (starts with '/')
 * @property {number} port
 * @property {string} user
 * @property {string | undefined} password
 * @property {string} database
 * @property {string} sslmode one of disable, allow, prefer, require, verify-ca, verify-full
 * @property {Certificate} [sslRootCert] the CA that signed the server's certificate
 * @property {Certificate} [sslCert] the client's certificate
 * @property {Certificate} [sslKey] the client certificate's key
 * @property {string} [options] libpq's `options` (-c name=value ...)
 * @property {string} [applicationName]
 * @property {number} [connectTimeout] seconds, 0 for no limit
 * @property {number} [maxConnections] the pool size the user or the driver object gave
 * @property {boolean} [pgbouncer] behind a transaction-mode pooler: no named prepared statements, no LISTEN
 * @property {Record<string, string>} from where each setting came from
 */

/**
 * @param {string} message
 * @returns {Error}
 */
function invalid(message) {
  return codedError('INVALID_ARGUMENT', message, TypeError)
}

/** @param {string} message */
function notSupported(message) {
  return codedError('NOT_SUPPORTED', message)
}

/** The OS user name, as libpq and postgres.js use it when no user is given. */
function osUser() {
  try {
    return os.userInfo().username
  } catch {
    return process.env.USERNAME || process.env.USER || ''
  }
}

/** @param {any} value */
function nonEmpty(value) {
  return value !== undefined && value !== null && value !== ''
}

/**
 * First of the candidates that is set, with where it came from.
 * @param {Array<[any, string]>} candidates
 * @returns {[any, string]}
 */
function pick(candidates) {
  for (const c of candidates) if (nonEmpty(c[0])) return c
  return [undefined, 'nowhere']
}

/**
 * An environment variable as a candidate of pick().
 * @param {string} name
 * @returns {[any, string]}
 */
function env(name) {
  return [process.env[name], name]
}

/**
 * @param {any} value
 * @param {string} what
 * @returns {number}
 */
function portNumber(value, what) {
  const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(String(value)) ? Number(value) : NaN
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw invalid(`${what}: port ${describe(value)} is not a port number (1-65535)`)
  }
  return n
}

/**
 * @param {string} value
 * @param {string} what
 */
function decode(value, what) {
  try {
    return decodeURIComponent(value)
  } catch {
    throw invalid(`${what}: bad percent-encoding in ${describe(value)}`)
  }
}

/**
 * A URL with its password replaced by ***, for messages.
 * @param {any} url
 */
function redact(url) {
  if (typeof url !== 'string') return url
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*:)[^@/?#]*@/i, '$1***@')
    .replace(/([?&]password=)[^&#]*/gi, '$1***')
}

/**
 * What the connection used and where each part came from, for error messages.
 * The password itself is never shown.
 * @param {Settings} s
 */
function describeSettings(s) {
  const where = s.host.startsWith('/') ? `socket ${path.join(s.host, `.s.PGSQL.${s.port}`)}` : `${s.host}:${s.port}`
  const hostFrom =
    s.from.host === s.from.port ? `from ${s.from.host}` : `host from ${s.from.host}, port from ${s.from.port}`
  return (
    `server ${where} (${hostFrom}), ` +
    `user "${s.user}" (from ${s.from.user}), ` +
    `password ${s.password === undefined ? 'none' : `from ${s.from.password}`}, ` +
    `database "${s.database}" (from ${s.from.database}), ` +
    `sslmode ${s.sslmode} (from ${s.from.sslmode})`
  )
}

module.exports = {
  SSL_MODES,
  invalid,
  notSupported,
  osUser,
  nonEmpty,
  pick,
  env,
  portNumber,
  decode,
  redact,
  describeSettings,
}
