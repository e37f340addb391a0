'use strict'
// The PostgreSQL adapter's reading of a knex pg instance: knex hands its
// connection settings to node-postgres, so they are read as pg reads them.
// The Rust core opens its own connections to the same database.

const { clientName, knexServerConnection } = require('../knex')
const { fromPgConfig } = require('./node-postgres')
const { postgresTarget } = require('./index')

const PG_CLIENTS = new Set(['pg', 'postgres', 'postgresql'])

/** @param {any} client a knex Client */
function isPgKnex(client) {
  return PG_CLIENTS.has(clientName(client))
}

/**
 * The store of a knex PostgreSQL instance's database and these tables.
 * @param {any} client the knex Client
 * @param {import('../tables').Tables} tables
 * @returns {Promise<import('../shared-stores').StoreTarget>}
 */
async function fromKnexPg(client, tables) {
  const { what, connection, poolMax } = await knexServerConnection(client, 'postgres')
  // knex keeps the password as a hidden (non-enumerable) property: copy it
  const config = typeof connection === 'string' ? { connectionString: connection } : { ...connection, password: connection.password }
  // knex's searchPath option: the schemas the tables are looked up in
  const searchPath = client.config.searchPath
  const schemas = (Array.isArray(searchPath) ? searchPath : searchPath ? [searchPath] : []).map(String)
  const options = schemas.length ? { options: `-c search_path=${schemas.join(',')}` } : {}
  return postgresTarget(fromPgConfig({ ...config, ...options, ...(poolMax ? { max: poolMax } : {}) }, 'connection', what), tables)
}

module.exports = { isPgKnex, fromKnexPg }
