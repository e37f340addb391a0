'use strict'
// The Neo4j adapter: what the user hands in (a neo4j-driver Driver or a
// Promise of one, or { url, user, password, database? }, and the labels) ->
// the options of Store.open({ neo4j }). Any supported server (3.5, 4.4, 5.x)
// is served by both entry points: the Bolt version the server speaks
// decides, not the path.

const { codedError } = require('../../errors')
const { assertPositiveInteger, isPlainObject, describe, quiet } = require('../../util')
const { readTables } = require('../tables')
const { assertDriver, fromDriver } = require('./driver')

/** Errors about reaching the server: they get the url and user used. */
const ABOUT_CONNECTING = new Set(['CANNOT_CONNECT', 'AUTH_FAILED', 'UNKNOWN_DATABASE', 'CONNECTION_LOST'])

/**
 * @param {any} value
 * @param {string} name
 * @param {string} what
 */
function optionalString(value, name, what) {
  if (value === undefined) return undefined
  if (typeof value !== 'string') {
    throw codedError('INVALID_ARGUMENT', `${what}: ${name} must be a string, got ${describe(value)}`, TypeError)
  }
  return value
}

/**
 * Adds the url, user and database used to a connection error.
 * @param {any} err
 * @param {{ url: string, user?: string, database?: string }} s
 */
function explain(err, s) {
  if (!(err instanceof Error) || !ABOUT_CONNECTING.has(/** @type {any} */ (err).code)) return err
  const e = /** @type {any} */ (err)
  if (e.connection) return err
  e.connection = { url: s.url, user: s.user, database: s.database }
  e.message = `${e.message}\n  (evtstore-rs used: url ${s.url}, user ${s.user === undefined ? '(none)' : JSON.stringify(s.user)}` +
    `${s.database === undefined ? '' : `, database ${JSON.stringify(s.database)}`})`
  return err
}

/**
 * Checks a Neo4j provider's options at once and reads the connection settings.
 * @param {any} opts
 * @param {string} what e.g. 'neo4j createProvider'
 * @returns {Promise<import('../shared-stores').StoreTarget>}
 */
function fromNeo4jOptions(opts, what) {
  if (!isPlainObject(opts)) {
    throw codedError(
      'INVALID_ARGUMENT',
      `${what}: expected an options object such as { client: neo4j.driver(...), events: 'events', bookmarks: 'bookmarks' } ` +
        `or { url: 'bolt://localhost:7687', user, password }, got ${describe(opts)}`,
      TypeError
    )
  }
  const hasUrl = opts.url !== undefined
  const hasClient = opts.client !== undefined
  if (hasUrl && hasClient) {
    throw codedError('INVALID_ARGUMENT', `${what}: give either "url" or "client", not both`, TypeError)
  }
  if (!hasUrl && !hasClient) {
    throw codedError(
      'INVALID_ARGUMENT',
      `${what}: "client" (a neo4j-driver Driver) or "url" (bolt://host:7687) is required`,
      TypeError
    )
  }
  const tables = readTables(opts)
  if (hasUrl && (typeof opts.url !== 'string' || !/^(bolt|neo4j)(\+s|\+ssc)?:\/\//i.test(opts.url))) {
    throw codedError('INVALID_ARGUMENT', `${what}: url must be a bolt:// or neo4j:// URL, got ${describe(opts.url)}`, TypeError)
  }
  const user = optionalString(opts.user, 'user', what)
  const password = optionalString(opts.password, 'password', what)
  const database = optionalString(opts.database, 'database', what)
  if (opts.maxConnections !== undefined) assertPositiveInteger(opts.maxConnections, `${what}: maxConnections`)
  if (hasClient) assertDriver(opts.client, what)
  return quiet(
    (async () => {
      const base = hasClient ? fromDriver(await opts.client, what) : { url: opts.url, user, password }
      /** @type {import('../../native').StoreOptions['neo4j'] & {}} */
      const o = { url: base.url, events: tables.events, bookmarks: tables.bookmarks }
      const u = hasClient ? base.user : user
      const p = hasClient ? base.password : password
      if (u !== undefined) o.user = u
      if (p !== undefined) o.password = p
      if (database !== undefined) o.database = database
      if (opts.maxConnections !== undefined) o.maxConnections = opts.maxConnections
      const settings = { url: o.url, user: o.user, database: o.database }
      return {
        key: `neo4j\0${JSON.stringify(o)}`,
        options: { neo4j: o },
        explain: (/** @type {any} */ err) => explain(err, settings),
      }
    })()
  )
}

module.exports = { fromNeo4jOptions }
