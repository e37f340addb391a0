'use strict'
// Connection settings for the native PostgreSQL store, read from what the user
// hands in: a postgres:// URL, a postgres.js `sql` instance, or a node-postgres
// Pool or Client. Neither postgres.js nor pg is ever required here: only the
// properties of the user's objects are read. Whatever is missing is filled the
// way the driver in question fills it (environment variables, defaults), and
// every setting remembers where it came from, so that a connection error can say
// which setting was wrong.

const os = require('os')
const fs = require('fs')
const crypto = require('crypto')
const path = require('path')
const { codedError } = require('./errors')
const { describe, isThenable, isPlainObject } = require('./util')

const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']

/** URL query parameters passed on to the native store as they are. */
const PASSED_PARAMS = ['sslrootcert', 'sslcert', 'sslkey', 'options', 'application_name', 'connect_timeout']
/** URL query parameters that are read into the settings themselves. */
const READ_PARAMS = ['host', 'port', 'user', 'password', 'dbname', 'sslmode']

/**
 * @typedef {object} Settings
 * @property {string} host a host name or IP address, or a Unix socket directory (starts with '/')
 * @property {number} port
 * @property {string} user
 * @property {string | undefined} password
 * @property {string} database
 * @property {string} sslmode one of disable, allow, prefer, require, verify-ca, verify-full
 * @property {Array<[string, string]>} params other query parameters of the URL (sslrootcert, options, ...)
 * @property {number | undefined} maxConnections the pool size the driver object was given
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

/** Where a setting came from, for an environment variable. */
const env = (/** @type {string} */ name) => [process.env[name], name]

// ------------------------------------------------------------------ the URL

/**
 * Settings from a postgres:// or postgresql:// URL, with what it leaves out
 * filled the way libpq does: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE,
 * PGSSLMODE, then localhost, 5432, the OS user, a database named like the user
 * and sslmode=prefer.
 *
 * @param {any} url
 * @param {string} what e.g. 'postgres createProvider'
 * @returns {Settings}
 */
function fromUrl(url, what) {
  const malformed = (/** @type {string} */ why) =>
    invalid(
      `${what}: malformed url ${describe(redact(url))}: ${why} ` +
        '(expected postgres://user:password@host:port/database?sslmode=...)'
    )
  if (typeof url !== 'string') throw malformed('not a string')
  const scheme = /^(postgres|postgresql):\/\//i.exec(url)
  if (!scheme) throw malformed('it must start with postgres:// or postgresql://')
  const rest = url.slice(scheme[0].length)
  const authority = rest.split(/[/?#]/)[0]
  const hostPart = authority.slice(authority.lastIndexOf('@') + 1)
  if (hostPart.includes(',')) {
    throw notSupported(
      `${what}: several hosts in one url (${hostPart}) are not supported yet: give the url of one server`
    )
  }
  // WHATWG URL wants a host after user@ (libpq does not): stand in for an empty one
  const emptyHost = authority.includes('@') && hostPart === ''
  const EMPTY = 'evtstore-rs-empty-host'
  let parsed
  try {
    parsed = new URL('postgres://' + (emptyHost ? authority + EMPTY + rest.slice(authority.length) : rest))
  } catch (cause) {
    throw malformed(String(cause && cause.message))
  }
  if (parsed.hash) throw malformed('it has a #fragment (percent-encode a "#" in the password as %23)')

  /** @type {Record<string, string>} */
  const query = {}
  /** @type {Array<[string, string]>} */
  const params = []
  for (const [key, value] of parsed.searchParams) {
    if (READ_PARAMS.includes(key)) query[key] = value
    else if (PASSED_PARAMS.includes(key)) params.push([key, value])
    else {
      throw invalid(
        `${what}: url parameter "${key}" is not supported ` +
          `(supported: ${[...READ_PARAMS, ...PASSED_PARAMS].join(', ')})`
      )
    }
  }

  let hostname = emptyHost ? '' : parsed.hostname
  if (hostname.startsWith('[') && hostname.endsWith(']')) hostname = hostname.slice(1, -1)
  hostname = decode(hostname, what)
  const urlUser = parsed.username ? decode(parsed.username, what) : ''
  const urlPassword = parsed.password ? decode(parsed.password, what) : ''
  const urlDatabase = parsed.pathname.length > 1 ? decode(parsed.pathname.slice(1), what) : ''

  // a query parameter wins over the part of the url, then the environment, then the default
  const [host, hostFrom] = pick([
    [query.host, 'the url (host=)'],
    [hostname, 'the url'],
    env('PGHOST'),
    ['localhost', 'the default'],
  ])
  const [port, portFrom] = pick([
    [query.port, 'the url (port=)'],
    [parsed.port, 'the url'],
    env('PGPORT'),
    [5432, 'the default'],
  ])
  const [user, userFrom] = pick([
    [query.user, 'the url (user=)'],
    [urlUser, 'the url'],
    env('PGUSER'),
    [osUser(), 'the OS user'],
  ])
  const [password, passwordFrom] = pick([
    [query.password, 'the url (password=)'],
    [urlPassword, 'the url'],
    env('PGPASSWORD'),
  ])
  const [database, databaseFrom] = pick([
    [query.dbname, 'the url (dbname=)'],
    [urlDatabase, 'the url'],
    env('PGDATABASE'),
    [user, 'the user name'],
  ])
  const [sslmode, sslFrom] = pick([[query.sslmode, 'the url (sslmode=)'], env('PGSSLMODE'), ['prefer', 'the default']])
  const from = {
    host: hostFrom,
    port: portFrom,
    user: userFrom,
    password: passwordFrom,
    database: databaseFrom,
    sslmode: sslFrom,
  }
  if (!SSL_MODES.includes(sslmode)) {
    throw invalid(`${what}: sslmode ${describe(sslmode)} (from ${sslFrom}) is not one of ${SSL_MODES.join(', ')}`)
  }
  return {
    host,
    port: portNumber(port, `${what} (port from ${portFrom})`),
    user,
    password: nonEmpty(password) ? password : undefined,
    database,
    sslmode,
    params,
    maxConnections: undefined,
    from,
  }
}

// ------------------------------------------------------------ TLS settings

/**
 * PEM text from a string, a Buffer or an array of them (Node's tls options).
 * @param {any} value
 * @param {string} what
 * @returns {string}
 */
function pemText(value, what) {
  if (Array.isArray(value)) return value.map((v) => pemText(v, what)).join('\n')
  if (typeof value === 'string') return value
  if (value && typeof value === 'object' && typeof value.toString === 'function' && ArrayBuffer.isView(value)) {
    return value.toString()
  }
  throw notSupported(`${what} is ${describe(value)}: give PEM text (a string or a Buffer)`)
}

/** Files written by pemFile() in this process, removed when it exits. */
const pemFiles = new Set()

/**
 * The native store takes certificates and keys as file names: PEM text handed
 * in as Node TLS options is written to a file only this user can read, named
 * after this process and the text's hash, and removed when the process exits.
 * @param {string} text
 * @returns {string}
 */
function pemFile(text) {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user'
  const dir = path.join(os.tmpdir(), `evtstore-rs-tls-${uid}`)
  const name = `${process.pid}-${crypto.createHash('sha256').update(text).digest('hex').slice(0, 32)}.pem`
  const file = path.join(dir, name)
  if (pemFiles.has(file) && fs.existsSync(file)) return file
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  fs.writeFileSync(file, text, { mode: 0o600 })
  if (pemFiles.size === 0) {
    process.once('exit', () => {
      for (const f of pemFiles) {
        try {
          fs.unlinkSync(f)
        } catch {
          /* already gone */
        }
      }
    })
  }
  pemFiles.add(file)
  return file
}

/**
 * sslmode and certificate parameters from Node TLS options (the `ssl` object
 * both drivers pass to tls.connect): rejectUnauthorized false encrypts without
 * checking the certificate; a custom checkServerIdentity checks the CA only;
 * otherwise Node checks both. ca, cert and key are handed over as files
 * holding their PEM text.
 *
 * @param {Record<string, any>} ssl
 * @param {string} what e.g. 'pool.options.ssl'
 * @returns {{ sslmode: string, params: Array<[string, string]> }}
 */
function fromTlsOptions(ssl, what) {
  /** @type {Array<[string, string]>} */
  const params = []
  for (const unsupported of ['pfx', 'passphrase', 'secureContext']) {
    if (nonEmpty(ssl[unsupported])) {
      throw notSupported(`${what}.${unsupported} is not supported yet: give ca, cert and key as PEM text`)
    }
  }
  if (nonEmpty(ssl.ca)) params.push(['sslrootcert', pemFile(pemText(ssl.ca, `${what}.ca`))])
  if (nonEmpty(ssl.cert)) params.push(['sslcert', pemFile(pemText(ssl.cert, `${what}.cert`))])
  if (nonEmpty(ssl.key)) params.push(['sslkey', pemFile(pemText(ssl.key, `${what}.key`))])
  // pg-connection-string's file names (kept as file names: the core reads them)
  if (nonEmpty(ssl.sslrootcert)) params.push(['sslrootcert', String(ssl.sslrootcert)])
  if (nonEmpty(ssl.sslcert)) params.push(['sslcert', String(ssl.sslcert)])
  if (nonEmpty(ssl.sslkey)) params.push(['sslkey', String(ssl.sslkey)])
  let sslmode = 'verify-full'
  if (ssl.rejectUnauthorized === false) sslmode = 'require'
  else if (typeof ssl.checkServerIdentity === 'function') sslmode = 'verify-ca'
  return { sslmode, params }
}

// --------------------------------------------------------------- postgres.js

/**
 * postgres.js's `ssl` option: false, true, 'require', 'allow', 'prefer',
 * 'verify-full', or Node TLS options. 'require', 'allow' and 'prefer' skip the
 * certificate check there (only 'prefer' falls back to plain text); any other
 * truthy value checks certificate and host name.
 * @param {any} ssl
 */
function postgresJsSsl(ssl) {
  if (ssl === undefined || ssl === null || ssl === false || ssl === 'disable' || ssl === 'false' || ssl === '') {
    return { sslmode: 'disable', params: [] }
  }
  if (ssl === 'require' || ssl === 'allow') return { sslmode: 'require', params: [] }
  if (ssl === 'prefer') return { sslmode: 'prefer', params: [] }
  if (isPlainObject(ssl)) return fromTlsOptions(ssl, 'sql.options.ssl')
  return { sslmode: 'verify-full', params: [] }
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
 * Settings from a postgres.js instance (`postgres(...)`, version 3). postgres.js
 * has already filled in what the user left out (PGHOST, PGPORT, PGUSERNAME or
 * PGUSER, PGPASSWORD, PGDATABASE, localhost, 5432, the OS user): its
 * `sql.options` is read as it is. `pass` may be a function, possibly async.
 *
 * @param {any} sql
 * @param {string} what
 * @returns {Promise<Settings>}
 */
async function fromPostgresJs(sql, what) {
  if (!isPostgresJs(sql)) {
    throw invalid(
      `${what}: "sql" must be a postgres.js instance (const sql = postgres(...)), got ${describe(sql)}; ` +
        "or give { url: 'postgres://user:password@host:5432/database' }"
    )
  }
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
  const ssl = postgresJsSsl(o.ssl)
  const params = ssl.params
  const options = isPlainObject(o.connection) ? runtimeOptions(o.connection) : ''
  if (options) params.push(['options', options])
  if (Number.isFinite(o.connect_timeout) && o.connect_timeout > 0) {
    params.push(['connect_timeout', String(Math.ceil(o.connect_timeout))])
  }
  if (!nonEmpty(o.user)) throw invalid(`${what}: sql.options.user is empty`)
  return {
    host,
    port: portNumber(port, `${what} (${from.port})`),
    user: String(o.user),
    password: nonEmpty(pass) ? pass : undefined,
    database: nonEmpty(o.database) ? String(o.database) : String(o.user),
    sslmode: ssl.sslmode,
    params,
    maxConnections: Number.isSafeInteger(o.max) && o.max > 0 ? o.max : undefined,
    from,
  }
}

// ------------------------------------------------------------- node-postgres

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
      throw invalid(`${what}: malformed connectionString ${describe(redact(str))}: ${cause && cause.message}`)
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
 */
function pgSsl(ssl, what) {
  if (ssl === 'true') ssl = true
  if (ssl === 'no-verify') ssl = { rejectUnauthorized: false }
  if (!ssl) return { sslmode: 'disable', params: [] }
  if (ssl === true) return { sslmode: 'verify-full', params: [] }
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
  const tls = pgSsl(ssl, sslFrom)
  const params = tls.params
  if (nonEmpty(options_)) params.push(['options', String(options_)])
  if (nonEmpty(config.application_name)) params.push(['application_name', String(config.application_name)])
  if (Number.isFinite(config.connectionTimeoutMillis) && config.connectionTimeoutMillis > 0) {
    params.push(['connect_timeout', String(Math.ceil(config.connectionTimeoutMillis / 1000))])
  }
  const password = await pgPassword(
    passwordValue,
    typeof passwordValue === 'function' ? `${passwordFrom} (a function)` : passwordFrom,
    what
  )
  if (!nonEmpty(userValue)) throw invalid(`${what}: no user name (${own('user')}, PGUSER and USER are all empty)`)
  return {
    host: String(host),
    port: portNumber(port, `${what} (port from ${portFrom})`),
    user: String(userValue),
    password,
    database: String(database),
    sslmode: tls.sslmode,
    params,
    maxConnections: Number.isSafeInteger(options.max) && options.max > 0 ? options.max : undefined,
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
  const tls = pgSsl(sslValue, 'client.ssl')
  const params = tls.params
  if (nonEmpty(cp.options)) params.push(['options', String(cp.options)])
  if (nonEmpty(cp.application_name)) params.push(['application_name', String(cp.application_name)])
  const [userName, userNameFrom] = nonEmpty(user) ? [String(user), userFrom] : [osUser(), 'the OS user']
  return {
    host: nonEmpty(host) ? String(host) : 'localhost',
    port: portNumber(nonEmpty(port) ? port : 5432, `${what} (${portFrom})`),
    user: userName,
    password: await pgPassword(passwordValue, passwordFrom, what),
    database: nonEmpty(database) ? String(database) : userName,
    sslmode: tls.sslmode,
    params,
    maxConnections: undefined,
    from: {
      host: hostFrom,
      port: portFrom,
      user: userNameFrom,
      password: nonEmpty(passwordValue) ? passwordFrom : 'nowhere',
      database: nonEmpty(database) ? databaseFrom : 'the user name',
      sslmode: 'client.ssl',
    },
  }
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
  throw invalid(
    `${what}: "client" must be a node-postgres Pool or Client (new Pool(...)), got ${describe(client)}; ` +
      "or give { url: 'postgres://user:password@host:5432/database' }"
  )
}

// ------------------------------------------------------------------ output

/**
 * The URL the native store opens: every setting explicit, user, password and
 * database percent-encoded, a socket directory as the host= parameter.
 * @param {Settings} s
 * @returns {string}
 */
function toUrl(s) {
  const enc = encodeURIComponent
  const socket = s.host.startsWith('/')
  let host = socket ? 'localhost' : s.host
  if (!socket && host.includes(':')) host = `[${host}]`
  const auth = enc(s.user) + (s.password !== undefined ? ':' + enc(s.password) : '')
  const query = [['sslmode', s.sslmode]]
  if (socket) query.push(['host', s.host])
  query.push(...s.params)
  const q = query.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')
  return `postgres://${auth}@${host}:${s.port}/${enc(s.database)}?${q}`
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
  fromUrl,
  fromPostgresJs,
  fromPg,
  fromPgClient,
  fromPgConfig,
  parsePgConnectionString,
  isPostgresJs,
  isPgPool,
  isPgClient,
  toUrl,
  redact,
  describeSettings,
  SSL_MODES,
}
