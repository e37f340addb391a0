'use strict'
// The Neo4j test servers: one URL variable per version (`scripts/neo4j.sh
// start 3.5|4.4|5` prints each). Without one, the tests of that version are
// skipped with the reason, except under CI=true, where they fail and say so.
//
// Every provider instance gets labels of its own; its cleanup deletes their
// nodes and counter. The tests use neo4j-driver (a dev dependency) for that
// and to look at the graph; the package itself never loads it.
const crypto = require('node:crypto')

/** Each version's URL variable and the port scripts/neo4j.sh gives it. */
const SERVERS = {
  '3.5': 'EVTSTORE_TEST_NEO4J35_URL',
  4.4: 'EVTSTORE_TEST_NEO4J44_URL',
  5: 'EVTSTORE_TEST_NEO4J5_URL',
}

/**
 * { url } when the server of `version` was given; { skip } without it;
 * { fail } under CI=true without it.
 * @param {'3.5' | '4.4' | '5'} version
 */
function neo4jRequirement(version) {
  const variable = SERVERS[version]
  const url = process.env[variable] || ''
  if (url) return { url }
  const missing = `${variable} is not set: start a server with \`scripts/neo4j.sh start ${version}\` and export the URL it prints as ${variable}`
  if (process.env.CI === 'true') return { fail: `${missing}. Under CI=true the Neo4j tests must run (.ci/run starts the servers).` }
  return { skip: missing }
}

/** A neo4j-driver Driver on `url` (no auth on the test servers; any login is accepted). */
function driverFor(url) {
  const neo4j = require('neo4j-driver')
  return neo4j.driver(url, neo4j.auth.basic('neo4j', 'password'), { logging: { level: 'error', logger() {} } })
}

/** Labels no other test uses. */
function newLabels() {
  const tag = `${process.pid}_${crypto.randomBytes(4).toString('hex')}`
  return { events: `ev_${tag}`, bookmarks: `bm_${tag}` }
}

/**
 * Runs a statement on the server through neo4j-driver; returns the records as objects.
 * @param {any} driver
 * @param {string} query
 * @param {object} [params]
 */
async function run(driver, query, params = {}) {
  const session = driver.session()
  try {
    const result = await session.run(query, params)
    return result.records.map((r) => r.toObject())
  } finally {
    await session.close()
  }
}

/** Deletes the nodes of these labels and their counter. */
async function removeLabels(driver, { events, bookmarks }) {
  for (const label of [events, bookmarks]) await run(driver, `MATCH (n:\`${label}\`) DETACH DELETE n`)
  await run(driver, 'MATCH (c:EvtstorePosition {label: $label}) DELETE c', { label: events })
}

module.exports = { SERVERS, neo4jRequirement, driverFor, newLabels, run, removeLabels }
