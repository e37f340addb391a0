'use strict'
// PostgreSQL settings from a node-postgres (pg 8) Pool or Client, filled the
// way pg fills them. pg is never required here: only the properties of the
// user's objects are read.

const { invalid, notSupported, osUser, nonEmpty, portNumber, decode, redact } = require('./settings')
const { fromTlsOptions } = require('./tls')
const { describe, isThenable, isPlainObject } = require('../../util')

/** @typedef {import('./settings').Settings} Settings */

/**
 * pg-connection-string's reading of a connection string (what pg 8 does with
 * `connectionString`): a URL, 'socket:/dir?db=name', or '/dir database'.
 * sslrootcert, sslcert and sslkey stay file names.
 *
 * @param {string} str
 * @param {string} what
 * @returns {Record<string, any>}
 */
function parsePgConnectionString(str, what) {
  if (str.charAt(0) === '/') {
    const [host, database] = str.split(' ')
    return { host, database }
  }
  const cs = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(str)
  if (cs && cs[1].slice(cs[1].lastIndexOf('@') + 1).includes(',')) {
    throw notSupported(`${what}: several hosts in connectionString are not supported yet: give one server`)
  }
  if (/ |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(str)) {
    str = encodeURI(str).replace(/%25(\d\d)/g, '%$1')
  }
  let url
  let dummyHost = false
  try {
    url = new URL(str, 'postgres://base')
  } catch {
    try {
      url = new URL(str.replace('@/', '@___DUMMY___/'), 'postgres://base')
      dummyHost = true
    } catch (cause) {
      throw invalid(`${what}: malformed connectionString ${describe(redact(str))}: ${cause && /** @type {any} */ (cause).message}`)
    }
  }
  /** @type {Record<string, any>} */
  const config = {}
  for (const [key, value] of url.searchParams) config[key] = value
  config.user = config.user || decode(url.username, what)
  config.password = config.password || decode(url.password, what)
  if (url.protocol === 'socket:') {
    config.host = decodeURI(url.pathname)
    config.database = url.searchParams.get('db')
    return config
  }
  const hostname = dummyHost ? '' : url.hostname
  let pathname = url.pathname
  if (!config.host) config.host = decode(hostname, what)
  else if (hostname && /^%2f/i.test(hostname)) pathname = hostname + pathname
  if (!config.port) config.port = url.port
  const db = pathname.slice(1)
  config.database = db ? decodeURI(db) : null

  if (config.ssl === 'true' || config.ssl === '1') config.ssl = true
  if (config.ssl === '0') config.ssl = false
  const files = { sslrootcert: config.sslrootcert, sslcert: config.sslcert, sslkey: config.sslkey }
  if (config.sslcert || config.sslkey || config.sslrootcert || config.sslmode) config.ssl = {}
  for (const [k, v] of Object.entries(files)) if (v) config.ssl[k] = v
  const mode = config.sslmode
  if (config.uselibpqcompat === 'true') {
    // libpq's meanings: require checks nothing (the CA when one is given)
    if (mode === 'disable') config.ssl = false
    else if (mode === 'prefer') config.ssl.rejectUnauthorized = false
    else if (mode === 'require') {
      if (config.sslrootcert) config.ssl.checkServerIdentity = () => undefined
      else config.ssl.rejectUnauthorized = false
    } else if (mode === 'verify-ca') config.ssl.checkServerIdentity = () => undefined
  } else if (mode === 'disable') config.ssl = false
  else if (mode === 'no-verify') config.ssl.rejectUnauthorized = false
  // pg: prefer, require, verify-ca and verify-full all check the certificate and host
  return config
}

/**
 * pg's `ssl` after its own reading: false, true, 'true', 'no-verify' or TLS options.
 * @param {any} ssl
 * @param {string} what
 * @returns {import('./tls').Tls}
 */
function pgSsl(ssl, what) {
  if (ssl === 'true') ssl = true
  if (ssl === 'no-verify') ssl = { rejectUnauthorized: false }
  if (!ssl) return { sslmode: 'disable' }
  if (ssl === true) return { sslmode: 'verify-full' }
  if (typeof ssl === 'object') return fromTlsOptions(ssl, what)
  throw invalid(`${what} ${describe(ssl)} is not understood (expected true, false or TLS options)`)
}

/** pg's reading of PGSSLMODE when no ssl option is given. */
function pgSslFromEnv() {
  switch (process.env.PGSSLMODE) {
    case 'prefer':
    case 'require':
    case 'verify-ca':
    case 'verify-full':
      return true
    case 'no-verify':
      return { rejectUnauthorized: false }
    default:
      return false
  }
}

/**
 * Resolves pg's password option: a string, or a function returning one (or a Promise of one).
 * @param {any} password
 * @param {string} from
 * @param {string} what
 */
async function pgPassword(password, from, what) {
  let value = password
  if (typeof value === 'function') {
    value = value()
    if (isThenable(value)) value = await value
  }
  if (!nonEmpty(value)) return undefined
  if (typeof value !== 'string') {
    throw invalid(`${what}: the password (${from}) must be a string, got ${describe(value)}`)
  }
  return value
}

/**
 * Settings from a node-postgres configuration (what a Pool keeps in
 * `pool.options`), filled the way pg 8's ConnectionParameters does:
 * connectionString overrides the other fields, then PGUSER, PGDATABASE,
 * PGPORT, PGHOST, PGPASSWORD, PGSSLMODE, then $USER, a database named like
 * the user, localhost, 5432 and no TLS.
 *
 * @param {Record<string, any>} options
 * @param {string} prefix how the settings are named in messages, e.g. 'pool.options'
 * @param {string} what
 * @returns {Promise<Settings>}
 */
async function fromPgConfig(options, prefix, what) {
  let config = options
  const own = (/** @type {string} */ key) => `${prefix}.${key}`
  /** @type {Record<string, string>} */
  const origin = {}
  if (nonEmpty(config.connectionString)) {
    if (typeof config.connectionString !== 'string') {
      throw invalid(`${what}: ${own('connectionString')} must be a string, got ${describe(config.connectionString)}`)
    }
    const parsed = parsePgConnectionString(config.connectionString, what)
    for (const key of Object.keys(parsed)) if (nonEmpty(parsed[key])) origin[key] = own('connectionString')
    config = Object.assign({}, config, parsed)
  }
  const source = (/** @type {string} */ key) => origin[key] || own(key)
  // pg takes a field when it is truthy, else the environment, else its default
  /**
   * @param {string} key
   * @param {string} envName
   * @param {any} fallback
   * @param {string} fallbackFrom
   * @returns {[any, string]}
   */
  const val = (key, envName, fallback, fallbackFrom) => {
    if (config[key]) return [config[key], source(key)]
    if (process.env[envName]) return [process.env[envName], envName]
    return [fallback, fallbackFrom]
  }

  const osDefault = process.env.USER ? ['USER', process.env.USER] : ['the OS user', osUser()]
  const [userValue, userFrom] = val('user', 'PGUSER', osDefault[1], osDefault[0])
  const [database, databaseFrom] = val('database', 'PGDATABASE', userValue, 'the user name')
  const [port, portFrom] = val('port', 'PGPORT', 5432, 'the default')
  const [host, hostFrom] = val('host', 'PGHOST', 'localhost', 'the default')
  const [passwordValue, passwordFrom] = val('password', 'PGPASSWORD', undefined, 'nowhere')
  const [options_, optionsFrom] = val('options', 'PGOPTIONS', undefined, 'nowhere')
  let ssl
  let sslFrom
  if (config.ssl === undefined) {
    ssl = pgSslFromEnv()
    sslFrom = process.env.PGSSLMODE ? 'PGSSLMODE' : 'the default'
  } else {
    ssl = config.ssl
    sslFrom = source('ssl')
  }
  const { sslmode, ...certificates } = pgSsl(ssl, sslFrom)
  const password = await pgPassword(
    passwordValue,
    typeof passwordValue === 'function' ? `${passwordFrom} (a function)` : passwordFrom,
    what
  )
  if (!nonEmpty(userValue)) throw invalid(`${what}: no user name (${own('user')}, PGUSER and USER are all empty)`)
  /** @type {Settings} */
  const settings = {
    host: String(host),
    port: portNumber(port, `${what} (port from ${portFrom})`),
    user: String(userValue),
    password,
    database: String(database),
    sslmode,
    ...certificates,
    from: {
      host: hostFrom,
      port: portFrom,
      user: userFrom,
      password: typeof passwordValue === 'function' ? `${passwordFrom} (a function)` : passwordFrom,
      database: databaseFrom,
      sslmode: sslFrom,
      ...(optionsFrom !== 'nowhere' ? { options: optionsFrom } : {}),
    },
  }
  if (nonEmpty(options_)) settings.options = String(options_)
  if (nonEmpty(config.application_name)) settings.applicationName = String(config.application_name)
  if (Number.isFinite(config.connectionTimeoutMillis) && config.connectionTimeoutMillis > 0) {
    settings.connectTimeout = Math.ceil(config.connectionTimeoutMillis / 1000)
  }
  if (Number.isSafeInteger(options.max) && options.max > 0) settings.maxConnections = options.max
  return settings
}

/** @param {any} value */
function isPgClient(value) {
  return isPlainObject(value) && isPlainObject(value.connectionParameters) && typeof value.query === 'function'
}

/** @param {any} value */
function isPgPool(value) {
  return (
    isPlainObject(value) &&
    isPlainObject(value.options) &&
    typeof value.connect === 'function' &&
    typeof value.query === 'function'
  )
}

/**
 * Settings from a node-postgres Client: pg has already read its
 * configuration, environment and defaults into client.host, client.port,
 * client.user, client.database, client.password and client.connectionParameters.
 *
 * @param {any} client
 * @param {string} what
 * @returns {Promise<Settings>}
 */
async function fromPgClient(client, what) {
  const cp = client.connectionParameters
  const field = (/** @type {string} */ key) =>
    nonEmpty(client[key]) ? [client[key], `client.${key}`] : [cp[key], `client.connectionParameters.${key}`]
  const [host, hostFrom] = field('host')
  const [port, portFrom] = field('port')
  const [user, userFrom] = field('user')
  const [database, databaseFrom] = field('database')
  const [passwordValue, passwordFrom0] = field('password')
  const passwordFrom = typeof passwordValue === 'function' ? `${passwordFrom0} (a function)` : passwordFrom0
  const sslValue = client.ssl !== undefined ? client.ssl : cp.ssl
  const { sslmode, ...certificates } = pgSsl(sslValue, 'client.ssl')
  const [userName, userNameFrom] = nonEmpty(user) ? [String(user), userFrom] : [osUser(), 'the OS user']
  /** @type {Settings} */
  const settings = {
    host: nonEmpty(host) ? String(host) : 'localhost',
    port: portNumber(nonEmpty(port) ? port : 5432, `${what} (${portFrom})`),
    user: userName,
    password: await pgPassword(passwordValue, passwordFrom, what),
    database: nonEmpty(database) ? String(database) : userName,
    sslmode,
    ...certificates,
    from: {
      host: hostFrom,
      port: portFrom,
      user: userNameFrom,
      password: nonEmpty(passwordValue) ? passwordFrom : 'nowhere',
      database: nonEmpty(database) ? databaseFrom : 'the user name',
      sslmode: 'client.ssl',
    },
  }
  if (nonEmpty(cp.options)) settings.options = String(cp.options)
  if (nonEmpty(cp.application_name)) settings.applicationName = String(cp.application_name)
  return settings
}

/**
 * Settings from a node-postgres Pool or Client.
 * @param {any} client
 * @param {string} what
 * @returns {Promise<Settings>}
 */
async function fromPg(client, what) {
  if (isPgClient(client)) return fromPgClient(client, what)
  if (isPgPool(client)) return fromPgConfig(client.options, 'pool.options', what)
  throw notPg(client, what)
}

/**
 * Throws INVALID_ARGUMENT unless `client` is a node-postgres Pool or Client.
 * @param {any} client
 * @param {string} what
 */
function assertPg(client, what) {
  if (!isPgPool(client) && !isPgClient(client)) throw notPg(client, what)
}

/**
 * @param {any} client
 * @param {string} what
 */
function notPg(client, what) {
  return invalid(
    `${what}: "client" must be a node-postgres Pool or Client (new Pool(...)), got ${describe(client)}; ` +
      "or give { url: 'postgres://user:password@host:5432/database' }"
  )
}

module.exports = { fromPg, fromPgConfig, assertPg, parsePgConnectionString }
