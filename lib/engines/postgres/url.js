'use strict'
// PostgreSQL settings from a postgres:// url, read here once: the native store
// takes typed settings and never parses a url.

const { SSL_MODES, invalid, notSupported, osUser, nonEmpty, pick, env, portNumber, decode, redact } = require('./settings')
const { describe } = require('../../util')

/** Query parameters read into the settings. */
const PARAMETERS = [
  'host',
  'port',
  'user',
  'password',
  'dbname',
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'options',
  'application_name',
  'connect_timeout',
  'pgbouncer',
]

/**
 * Settings from a postgres:// or postgresql:// URL, with what it leaves out
 * filled the way libpq does: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE,
 * PGSSLMODE, then localhost, 5432, the OS user, a database named like the user
 * and sslmode=prefer. sslrootcert, sslcert and sslkey name files.
 *
 * @param {any} url
 * @param {string} what e.g. 'postgres createProvider'
 * @returns {import('./settings').Settings}
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
    throw malformed(String(cause && /** @type {any} */ (cause).message))
  }
  if (parsed.hash) throw malformed('it has a #fragment (percent-encode a "#" in the password as %23)')
  if (parsed.pathname.slice(1).includes('/')) throw malformed('the database name contains "/" (percent-encode it as %2F)')

  /** @type {Record<string, string>} */
  const query = {}
  for (const [key, value] of parsed.searchParams) {
    if (!PARAMETERS.includes(key)) {
      throw invalid(`${what}: url parameter "${key}" is not supported (supported: ${PARAMETERS.join(', ')})`)
    }
    query[key] = value
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
  if (!SSL_MODES.includes(sslmode)) {
    throw invalid(`${what}: sslmode ${describe(sslmode)} (from ${sslFrom}) is not one of ${SSL_MODES.join(', ')}`)
  }
  /** @type {import('./settings').Settings} */
  const settings = {
    host,
    port: portNumber(port, `${what} (port from ${portFrom})`),
    user,
    password: nonEmpty(password) ? password : undefined,
    database,
    sslmode,
    from: {
      host: hostFrom,
      port: portFrom,
      user: userFrom,
      password: passwordFrom,
      database: databaseFrom,
      sslmode: sslFrom,
    },
  }
  if (nonEmpty(query.sslrootcert)) settings.sslRootCert = { file: query.sslrootcert }
  if (nonEmpty(query.sslcert)) settings.sslCert = { file: query.sslcert }
  if (nonEmpty(query.sslkey)) settings.sslKey = { file: query.sslkey }
  if (nonEmpty(query.options)) settings.options = query.options
  if (nonEmpty(query.application_name)) settings.applicationName = query.application_name
  if (query.pgbouncer !== undefined) {
    if (query.pgbouncer !== 'true' && query.pgbouncer !== 'false') {
      throw invalid(`${what}: pgbouncer ${describe(query.pgbouncer)} must be true (behind a transaction-mode pooler) or false`)
    }
    settings.pgbouncer = query.pgbouncer === 'true'
  }
  if (query.connect_timeout !== undefined) {
    if (!/^\d+$/.test(query.connect_timeout)) {
      throw invalid(`${what}: connect_timeout ${describe(query.connect_timeout)} is not a whole number of seconds`)
    }
    settings.connectTimeout = Number(query.connect_timeout)
  }
  return settings
}

module.exports = { fromUrl }
