'use strict'
// The MySQL adapter's reading of a knex mysql or mysql2 instance: the Rust
// core opens its own connections to the same database (the knex instance
// only tells where it is).

const { clientName, knexConnection } = require('../knex')
const { fromMysqlConfig, fromUrl, mysqlTarget } = require('./index')
const { isPlainObject, describe } = require('../../util')
const { codedError } = require('../../errors')

const MYSQL_CLIENTS = new Set(['mysql', 'mysql2'])

/** @param {any} client a knex Client */
function isMysqlKnex(client) {
  return MYSQL_CLIENTS.has(clientName(client))
}

/**
 * The store of a knex MySQL instance's database and these tables.
 * @param {any} client the knex Client
 * @param {import('../tables').Tables} tables
 * @returns {Promise<import('../shared-stores').StoreTarget>}
 */
async function fromKnexMysql(client, tables) {
  const what = `evtstore-rs knex provider (client ${clientName(client)})`
  const connection = await knexConnection(client)
  let settings
  if (typeof connection === 'string') settings = fromUrl(connection, what)
  else if (isPlainObject(connection)) settings = fromMysqlConfig(connection, 'connection', what)
  else {
    throw codedError(
      'INVALID_ARGUMENT',
      `${what}: the knex connection is ${describe(connection)}: expected an object ({ host, user, password, database }) or a mysql:// url`,
      TypeError
    )
  }
  const pool = client.config.pool
  if (pool && Number.isSafeInteger(pool.max) && pool.max > 0) settings.maxConnections = pool.max
  return mysqlTarget(settings, tables, what)
}

module.exports = { isMysqlKnex, fromKnexMysql }
