'use strict'
// The MySQL adapter's reading of a knex mysql or mysql2 instance: the Rust
// core opens its own connections to the same database (the knex instance
// only tells where it is).

const { clientName, knexServerConnection } = require('../knex')
const { fromMysqlConfig, fromUrl, mysqlTarget } = require('./index')

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
  const { what, connection, poolMax } = await knexServerConnection(client, 'mysql')
  const settings = typeof connection === 'string' ? fromUrl(connection, what) : fromMysqlConfig(connection, 'connection', what)
  if (poolMax) settings.maxConnections = poolMax
  return mysqlTarget(settings, tables, what)
}

module.exports = { isMysqlKnex, fromKnexMysql }
