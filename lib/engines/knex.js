'use strict'
// Reading a user's knex instance and query builders: which client (and so
// which engine adapter) and which tables. knex itself is never required here.

const { codedError } = require('../errors')
const { describe, isPlainObject } = require('../util')
const { tableName } = require('./tables')

/** The other ways in, said when a knex client is not supported. */
const OTHER_PROVIDERS =
  'The other provider paths of this package: evtstore/provider/memory; evtstore/provider/sqlite (an SQLite file ' +
  'or url); evtstore/provider/postgres and evtstore/provider/pg (PostgreSQL: a url, a postgres.js instance, a pg ' +
  "Pool or Client); evtstore/provider/mysql (evtstore-rs's own: MySQL 8 or MariaDB 10.6+ by url); " +
  'evtstore/provider/mongo (MongoDB: a url, or Collections of the mongodb driver); evtstore/provider/neo4j and ' +
  'evtstore/provider/neo4j-v3 (Neo4j 3.5, 4.4 and 5.x: a neo4j-driver Driver or a url).'

/**
 * The knex Client object behind a knex instance or a query builder.
 * @param {any} value
 * @returns {any}
 */
function knexClient(value) {
  const client = value && value.client
  if (!client || typeof client !== 'object' || !client.config || typeof client.config !== 'object') return undefined
  return client
}

/**
 * The name of a knex client ('sqlite3', 'better-sqlite3', 'pg', ...).
 * @param {any} client a knex Client
 * @returns {string}
 */
function clientName(client) {
  const configured = client.config.client
  if (typeof configured === 'string') return configured
  if (typeof client.driverName === 'string') return client.driverName
  if (typeof client.dialect === 'string') return client.dialect
  return String(configured && configured.name)
}

/**
 * The connection a knex client was configured with (a function is called, a
 * Promise awaited, as knex does).
 * @param {any} client
 * @returns {Promise<any>}
 */
async function knexConnection(client) {
  let connection = client.config.connection
  if (typeof connection === 'function') connection = connection()
  return await connection
}

/**
 * What a knex client of a database server (pg, mysql, ...) was configured
 * with: its connection, a url or a settings object (anything else is
 * refused), and its pool's max, which the native pool takes as its size.
 * @param {any} client
 * @param {string} scheme the url scheme the error suggests, e.g. 'mysql'
 * @returns {Promise<{ what: string, connection: string | Record<string, any>, poolMax: number | undefined }>}
 */
async function knexServerConnection(client, scheme) {
  const what = `evtstore-rs knex provider (client ${clientName(client)})`
  const connection = await knexConnection(client)
  if (typeof connection !== 'string' && !isPlainObject(connection)) {
    throw codedError(
      'INVALID_ARGUMENT',
      `${what}: the knex connection is ${describe(connection)}: expected an object ({ host, user, password, database }) or a ${scheme}:// url`,
      TypeError
    )
  }
  const pool = client.config.pool
  const poolMax = pool && Number.isSafeInteger(pool.max) && pool.max > 0 ? pool.max : undefined
  return { what, connection, poolMax }
}

/** @param {any} client */
function notSupported(client) {
  return codedError(
    'NOT_SUPPORTED',
    `evtstore-rs knex provider: the knex client "${clientName(client)}" is not supported: ` +
      'use one of sqlite3, better-sqlite3, pg (or postgres, postgresql), mysql, mysql2. ' +
      OTHER_PROVIDERS
  )
}

/**
 * The client and table of what a `() => db('events')` option returns.
 * @param {any} factory
 * @param {string} what 'events' or 'bookmarks'
 * @returns {{ client: any, table: string }}
 */
function builderFrom(factory, what) {
  if (typeof factory !== 'function') {
    throw codedError(
      'INVALID_ARGUMENT',
      `evtstore-rs knex provider: "${what}" must be a function returning a knex query builder, ` +
        `such as () => db('${what}'), got ${describe(factory)}`,
      TypeError
    )
  }
  const qb = factory()
  const client = knexClient(qb)
  const table = qb && qb._single && qb._single.table
  if (!client || table === undefined) {
    throw codedError(
      'INVALID_ARGUMENT',
      `evtstore-rs knex provider: "${what}" must return a knex query builder on one table, such as db('${what}')`,
      TypeError
    )
  }
  return { client, table: tableName(table, what) }
}

module.exports = { knexClient, clientName, knexConnection, knexServerConnection, notSupported, builderFrom }
