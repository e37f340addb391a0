'use strict'

const { codedError } = require('./errors')

/** Every provider path, said in each NOT_SUPPORTED message: what works and what does not yet. */
const AVAILABLE =
  'Available in this version: evtstore/provider/memory; evtstore/provider/sqlite (an SQLite file or url); ' +
  'evtstore/provider/knex with an SQLite client (sqlite3, better-sqlite3); evtstore/provider/postgres and ' +
  'evtstore/provider/pg (PostgreSQL: a url, a postgres.js instance, a pg Pool or Client); ' +
  'evtstore/provider/neo4j and evtstore/provider/neo4j-v3 (Neo4j 3.5, 4.4 and 5.x: a neo4j-driver Driver or a url). ' +
  'Not yet: evtstore/provider/mongo, MySQL, and knex with a ' +
  'PostgreSQL or MySQL client (for PostgreSQL use evtstore/provider/pg or evtstore/provider/postgres meanwhile).'

/**
 * The functions of a provider entry point that this version does not ship:
 * the import path resolves, every call fails with code NOT_SUPPORTED
 * (createProvider throws, the functions evtstore makes async reject).
 * @param {string} path e.g. 'provider/postgres'
 * @param {string[]} names exported function names
 */
function unsupportedProvider(path, names) {
  /** @type {Record<string, Function>} */
  const exported = {}
  for (const name of names) {
    const error = () =>
      codedError(
        'NOT_SUPPORTED',
        `evtstore-rs: ${path} (${name}) is not available yet in this version of evtstore-rs. ${AVAILABLE}`
      )
    // createProvider is synchronous in evtstore: it throws; the others return
    // Promises there, so they reject
    const fail =
      name === 'createProvider'
        ? () => {
            throw error()
          }
        : () => Promise.reject(error())
    Object.defineProperty(fail, 'name', { value: name })
    exported[name] = fail
  }
  return exported
}

module.exports = { unsupportedProvider, AVAILABLE }
