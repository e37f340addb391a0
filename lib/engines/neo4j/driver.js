'use strict'
// Where a neo4j-driver Driver (4.4 to 6) connects, and as whom, read from the
// user's object: neo4j-driver itself is never required here. The Rust core
// opens its own Bolt connections to the same server.

const { codedError } = require('../../errors')
const { describe, isThenable } = require('../../util')

/**
 * @typedef {object} DriverSettings
 * @property {string} url bolt://host:port
 * @property {string} [user]
 * @property {string} [password]
 */

/**
 * Whether a value looks like a neo4j-driver Driver.
 * @param {any} value
 */
function isDriver(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.session === 'function' &&
    typeof value.close === 'function' &&
    value._meta !== undefined &&
    value._meta !== null
  )
}

/**
 * Checks that `client` is a Driver or a Promise of one (a Promise is checked once resolved).
 * @param {any} client
 * @param {string} what
 */
function assertDriver(client, what) {
  if (isThenable(client) || isDriver(client)) return
  throw codedError(
    'INVALID_ARGUMENT',
    `${what}: "client" must be a neo4j-driver Driver (neo4j.driver(url, auth)) or a Promise of one, got ${describe(client)}`,
    TypeError
  )
}

/**
 * The auth token the driver was made with: 4.4 keeps it on its connection
 * provider, 5.x and 6.x in a static token manager.
 * @param {any} driver
 * @param {string} what
 */
function authToken(driver, what) {
  const provider =
    typeof driver._getOrCreateConnectionProvider === 'function' ? driver._getOrCreateConnectionProvider() : undefined
  const candidates = [
    provider && provider._authToken,
    provider && provider._authenticationProvider && provider._authenticationProvider._authTokenManager
      ? provider._authenticationProvider._authTokenManager._authToken
      : undefined,
  ]
  for (const token of candidates) if (token && typeof token === 'object') return token
  if (provider && provider._authenticationProvider) {
    throw codedError(
      'NOT_SUPPORTED',
      `${what}: the driver's credentials come from an auth token manager whose token cannot be read; ` +
        'pass { url, user, password } instead of the driver'
    )
  }
  return undefined
}

/**
 * The server and login of a Driver.
 * @param {any} driver
 * @param {string} what
 * @returns {DriverSettings}
 */
function fromDriver(driver, what) {
  if (!isDriver(driver)) {
    throw codedError(
      'INVALID_ARGUMENT',
      `${what}: "client" resolved to ${describe(driver)}, not a neo4j-driver Driver`,
      TypeError
    )
  }
  const config = driver._config || {}
  if (config.encrypted === true || config.encrypted === 'ENCRYPTION_ON') {
    throw codedError(
      'NOT_SUPPORTED',
      `${what}: the driver uses TLS (an encrypted connection), which evtstore-rs does not speak to Neo4j yet`
    )
  }
  const address = driver._meta.address
  const hostPort = address && (address._stringValue || address._hostPort || String(address.asHostPort && address.asHostPort()))
  if (!hostPort || typeof hostPort !== 'string') {
    throw codedError('INVALID_ARGUMENT', `${what}: cannot tell which server the driver connects to`, TypeError)
  }
  /** @type {DriverSettings} */
  const settings = { url: `bolt://${hostPort}` }
  const token = authToken(driver, what)
  if (token && token.scheme === 'basic') {
    settings.user = token.principal
    settings.password = token.credentials
  } else if (token && token.scheme && token.scheme !== 'none') {
    throw codedError(
      'NOT_SUPPORTED',
      `${what}: the driver logs in with the "${token.scheme}" scheme; evtstore-rs supports basic auth (a user and password) or none`
    )
  }
  return settings
}

module.exports = { isDriver, assertDriver, fromDriver }
