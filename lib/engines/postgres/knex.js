'use strict'
// The PostgreSQL adapter's reading of a knex pg instance: knex hands its
// connection settings to node-postgres, so they are read as pg reads them.
// The Rust core opens its own connections to the same database.

const { clientName, knexConnection } = require('../knex')
const { fromPgConfig } = require('./node-postgres')
const { postgresTarget } = require('./index')
const { isPlainObject, describe } = require('../../util')
const { codedError } = require('../../errors')

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
  const what = `evtstore-rs knex provider (client ${clientName(client)})`
  const connection = await knexConnection(client)
  let config
  if (typeof connection === 'string') config = { connectionString: connection }
  // knex keeps the password as a hidden (non-enumerable) property: copy it
  else if (isPlainObject(connection)) config = { ...connection, password: connection.password }
  else {
    throw codedError(
      'INVALID_ARGUMENT',
      `${what}: the knex connection is ${describe(connection)}: expected an object ({ host, user, password, database }) or a postgres:// url`,
      TypeError
    )
  }
  const pool = client.config.pool
  const max = pool && Number.isSafeInteger(pool.max) && pool.max > 0 ? pool.max : undefined
  // knex's searchPath option: the schemas the tables are looked up in
  const searchPath = client.config.searchPath
  const schemas = (Array.isArray(searchPath) ? searchPath : searchPath ? [searchPath] : []).map(String)
  const options = schemas.length ? { options: `-c search_path=${schemas.join(',')}` } : {}
  return postgresTarget(fromPgConfig({ ...config, ...options, ...(max ? { max } : {}) }, 'connection', what), tables)
}

module.exports = { isPgKnex, fromKnexPg }
