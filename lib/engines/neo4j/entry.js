'use strict'
// The functions of evtstore's two Neo4j entry points (provider/neo4j and
// provider/neo4j-v3): the same engine serves both; only the provider's
// `driver` name differs.

const { fromNeo4jOptions } = require('./index')
const { assertDriver } = require('./driver')
const { checkProviderOptions, providerOn } = require('../provider')
const { migrate: migrateTarget } = require('../shared-stores')

/**
 * A row of a result as evtstore's `cypher` gives it: a node's properties
 * spread into the row, other values under the last part of their key.
 * @param {any} record
 */
function flatten(record) {
  /** @type {Record<string, any>} */
  const row = {}
  const values = typeof record.toObject === 'function' ? record.toObject() : record
  for (const key of Object.keys(values)) {
    const value = values[key]
    if (value && typeof value === 'object' && value.properties !== undefined) Object.assign(row, value.properties)
    else row[key.split('.').pop() || key] = value
  }
  return row
}

/**
 * The entry point named `driver`.
 * @param {'neo4j' | 'neo4j-v3'} driver
 */
function neo4jEntry(driver) {
  /**
   * A provider on Neo4j (3.5, 4.4 or 5.x), run by the Rust core.
   * @param {any} opts
   */
  function createProvider(opts) {
    const what = `${driver} createProvider`
    const target = fromNeo4jOptions(opts, what)
    checkProviderOptions(opts, what)
    return providerOn(target, { driver, limit: opts.limit, onError: opts.onError })
  }

  /**
   * Creates the constraints and indexes (with the syntax of the server's
   * version) and the position counter; idempotent, never drops.
   * @param {any} opts
   */
  async function migrate(opts) {
    await migrateTarget(fromNeo4jOptions(opts, `${driver} migrate`))
  }

  /**
   * Runs a statement through the user's own Driver (as evtstore's helper
   * does): rows with node properties spread out.
   * @param {any} client a neo4j-driver Driver or a Promise of one
   * @param {string} query
   * @param {object} [params]
   */
  async function cypher(client, query, params) {
    assertDriver(client, `${driver} cypher`)
    const cli = await client
    const session = cli.session({ defaultAccessMode: 'WRITE' })
    try {
      const result = await session.run(query, params)
      return result.records.map(flatten)
    } finally {
      await session.close()
    }
  }

  return { createProvider, migrate, cypher }
}

module.exports = { neo4jEntry }
