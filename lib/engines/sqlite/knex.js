'use strict'
// The SQLite adapter's reading of a knex sqlite3 or better-sqlite3 instance:
// the Rust core opens the same file itself (the knex instance only tells which
// file); a ':memory:' database belongs to the knex instance.

const { codedError } = require('../../errors')
const { clientName, knexConnection } = require('../knex')
const { sqliteTarget, fileName } = require('./index')

const SQLITE_CLIENTS = new Set(['sqlite3', 'sqlite', 'better-sqlite3'])

/** @param {any} client a knex Client */
function isSqliteKnex(client) {
  return SQLITE_CLIENTS.has(clientName(client)) || client.dialect === 'sqlite3'
}

/**
 * The database file a knex SQLite client connects to.
 * @param {any} client
 * @returns {Promise<string>}
 */
async function knexFile(client) {
  const connection = await knexConnection(client)
  const file = typeof connection === 'string' ? connection : connection && connection.filename
  if (typeof file !== 'string' || file === '') {
    throw codedError(
      'INVALID_ARGUMENT',
      'evtstore-rs knex provider: the knex SQLite connection has no file name ' +
        "(expected connection: { filename: 'events.db' } or ':memory:')",
      TypeError
    )
  }
  if (/^file:/i.test(file)) {
    throw codedError(
      'NOT_SUPPORTED',
      `evtstore-rs knex provider: SQLite URI file names (${file}) are not supported yet: use a plain file name`
    )
  }
  return fileName(file)
}

/**
 * The store of a knex SQLite instance's database and these tables.
 * @param {any} client the knex Client
 * @param {import('../tables').Tables} tables
 * @param {{ synchronous: string, journalMode: string }} [durability] how the file is written (readDurability)
 * @returns {Promise<import('../shared-stores').StoreTarget>}
 */
async function fromKnex(client, tables, durability) {
  return sqliteTarget(await knexFile(client), tables, client, durability)
}

module.exports = { isSqliteKnex, fromKnex }
