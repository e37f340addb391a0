'use strict'
// The MySQL/MariaDB server the tests use: its URL comes from
// EVTSTORE_TEST_MYSQL_URL (`scripts/mariadb.sh start` prints one; the user may
// create databases). Without it the MySQL tests are skipped with the reason,
// except under CI=true, where they fail and say so.
//
// Every provider instance gets a database of its own, dropped in its cleanup.
// The tests use mysql2 (a dev dependency) for that and to look at the tables;
// the package itself never loads it.
const { describe, it, after } = require('node:test')
const crypto = require('node:crypto')

const SERVER_URL = process.env.EVTSTORE_TEST_MYSQL_URL || ''

const MISSING =
  'EVTSTORE_TEST_MYSQL_URL is not set: start a server with `scripts/mariadb.sh start` ' +
  'and export the URL it prints as EVTSTORE_TEST_MYSQL_URL'

/** { url } with a server; { skip: reason } without; { fail: message } under CI=true without. */
function mysqlRequirement() {
  if (SERVER_URL) return { url: SERVER_URL }
  if (process.env.CI === 'true') {
    return { fail: `${MISSING}. Under CI=true the MySQL tests must run (.ci/run starts the server).` }
  }
  return { skip: MISSING }
}

/**
 * describe() for tests that need the server: skipped with the reason when
 * there is none, or one failing test saying so under CI.
 * @param {string} name
 * @param {() => void} fn
 */
function describeMysql(name, fn) {
  const req = mysqlRequirement()
  if (req.skip || req.fail) {
    return describe(name, () => {
      it('needs a MySQL server', req.skip ? { skip: req.skip } : {}, () => {
        throw new Error(req.fail)
      })
    })
  }
  return describe(name, fn)
}

/** The server URL with another database. */
function urlFor(database) {
  const url = new URL(SERVER_URL)
  url.pathname = '/' + encodeURIComponent(database)
  return url.toString()
}

/** The parts of the server URL, decoded, for drivers given fields. */
function serverParts() {
  const url = new URL(SERVER_URL)
  return {
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  }
}

/**
 * Runs statements on one database (or the server's default) through a
 * short-lived mysql2 connection.
 * @param {string} url
 * @param {string} sql
 * @param {any[]} [values]
 */
async function query(url, sql, values) {
  const mysql = require('mysql2/promise')
  const conn = await mysql.createConnection({ uri: url, multipleStatements: true })
  try {
    const [rows] = await conn.query(sql, values)
    return rows
  } finally {
    await conn.end()
  }
}

const dropping = new Set()
let counter = 0
let swept = false

/** Drops the test databases that processes no longer running left behind. */
async function sweep() {
  swept = true
  const rows = await query(SERVER_URL, "SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'evtstore\\_m\\_%'")
  for (const { name } of /** @type {any[]} */ (rows)) {
    const pid = Number(String(name).split('_')[2])
    if (!Number.isInteger(pid) || pid === process.pid) continue
    try {
      process.kill(pid, 0)
      continue
    } catch (err) {
      if (/** @type {any} */ (err).code === 'EPERM') continue
    }
    await query(SERVER_URL, `DROP DATABASE IF EXISTS \`${name}\``).catch(() => {})
  }
}

/**
 * Creates a fresh, uniquely named database; drop() starts the DROP and the
 * end of the test file waits for it.
 * @returns {Promise<{ name: string, url: string, drop: () => Promise<void> }>}
 */
async function createMysqlDatabase() {
  if (!SERVER_URL) throw new Error(MISSING)
  if (!swept) await sweep()
  const name = `evtstore_m_${process.pid}_${++counter}_${crypto.randomBytes(3).toString('hex')}`
  await query(SERVER_URL, `CREATE DATABASE \`${name}\` DEFAULT CHARSET utf8mb4`)
  let dropped = false
  return {
    name,
    url: urlFor(name),
    async drop() {
      if (dropped) return
      dropped = true
      const done = query(SERVER_URL, `DROP DATABASE IF EXISTS \`${name}\``).finally(() => dropping.delete(done))
      dropping.add(done)
      done.catch(() => {})
    },
  }
}

if (SERVER_URL) after(() => Promise.all([...dropping]))

module.exports = { SERVER_URL, mysqlRequirement, describeMysql, urlFor, serverParts, query, createMysqlDatabase }
