'use strict'
// The PostgreSQL server the tests use: its admin URL comes from
// EVTSTORE_TEST_PG_URL (`scripts/postgres.sh start` prints one). Without it the
// PostgreSQL tests are skipped with the reason, except under CI=true, where
// they fail and say so.
//
// Every provider instance gets a database of its own, created from the admin
// URL and dropped in its cleanup. The tests use node-postgres (a dev
// dependency) for that and to look at the tables; the package itself never
// loads it.
const { describe, it, after } = require('node:test')
const crypto = require('node:crypto')

const ADMIN_URL = process.env.EVTSTORE_TEST_PG_URL || ''

const MISSING =
  'EVTSTORE_TEST_PG_URL is not set: start a server with `scripts/postgres.sh start` ' +
  'and export the URL it prints as EVTSTORE_TEST_PG_URL'

/**
 * { url } when a server was given; { skip: reason } on a laptop without one;
 * { fail: message } under CI=true without one.
 */
function pgRequirement() {
  if (ADMIN_URL) return { url: ADMIN_URL }
  if (process.env.CI === 'true') {
    return { fail: `${MISSING}. Under CI=true the PostgreSQL tests must run (.ci/run starts the server).` }
  }
  return { skip: MISSING }
}

/**
 * describe() for tests that need the server: skipped with the reason when
 * there is none, or one failing test saying so under CI.
 * @param {string} name
 * @param {object} [opts]
 * @param {() => void} fn
 */
function describePg(name, opts, fn) {
  if (typeof opts === 'function') {
    fn = opts
    opts = {}
  }
  const req = pgRequirement()
  if (req.skip || req.fail) {
    // one test that is skipped with the reason, or fails under CI
    return describe(name, opts, () => {
      it('needs a PostgreSQL server', req.skip ? { skip: req.skip } : {}, () => {
        throw new Error(req.fail)
      })
    })
  }
  return describe(name, opts, fn)
}

let adminPool
/** A small pg Pool on the admin database; idle connections do not keep the process alive. */
function admin() {
  if (!adminPool) {
    const { Pool } = require('pg')
    adminPool = new Pool({ connectionString: ADMIN_URL, max: 2, idleTimeoutMillis: 500, allowExitOnIdle: true })
    adminPool.on('error', () => {})
  }
  return adminPool
}

/** The admin URL with another database (and optionally other user/password/port). */
function urlFor(database, { user, password, port, host } = {}) {
  const url = new URL(ADMIN_URL)
  url.pathname = '/' + encodeURIComponent(database)
  if (user !== undefined) url.username = encodeURIComponent(user)
  if (password !== undefined) url.password = encodeURIComponent(password)
  if (port !== undefined) url.port = String(port)
  if (host !== undefined) url.hostname = host
  return url.toString()
}

/** The parts of the admin URL, decoded, for drivers given fields. */
function adminParts() {
  const url = new URL(ADMIN_URL)
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.slice(1)) || 'postgres',
  }
}

let counter = 0
let fileCopy = true

/**
 * CREATE DATABASE, copying the template's files (PostgreSQL 15's default
 * strategy writes the whole template to the WAL: several times slower, and
 * slower still as the WAL grows over a run).
 */
async function createDb(name) {
  if (fileCopy) {
    try {
      await admin().query(`CREATE DATABASE ${ident(name)} STRATEGY = FILE_COPY`)
      return
    } catch (err) {
      if (err.code !== '42601' && err.code !== '42704') throw err // before PostgreSQL 15: no STRATEGY
      fileCopy = false
    }
  }
  await admin().query(`CREATE DATABASE ${ident(name)}`)
}

/** A quoted identifier. */
function ident(name) {
  return '"' + String(name).replace(/"/g, '""') + '"'
}

/** Databases of this process whose DROP is still running (awaited at the end of the file). */
const dropping = new Set()
/** A database created ahead of time for the next createDatabase() (the tests want one each). */
let spare
let swept = false

/** Drops the test databases that processes no longer running left behind (killed runs). */
async function sweep() {
  swept = true
  const { rows } = await admin().query("SELECT datname FROM pg_database WHERE datname LIKE 'evtstore\\_t\\_%'")
  for (const { datname } of rows) {
    const pid = Number(datname.split('_')[2])
    if (!Number.isInteger(pid) || pid === process.pid) continue
    try {
      process.kill(pid, 0)
      continue // still running
    } catch (err) {
      if (err.code === 'EPERM') continue
    }
    await admin().query(`DROP DATABASE IF EXISTS ${ident(datname)} WITH (FORCE)`).catch(() => {})
  }
}

function newName() {
  return `evtstore_t_${process.pid}_${++counter}_${crypto.randomBytes(3).toString('hex')}`
}

/**
 * Creates a fresh, uniquely named database (the next one is created ahead,
 * while the test runs). `name` may be given (tests of names that need
 * percent-encoding). drop() starts the DROP and returns; the end of the test
 * file waits for every DROP.
 * @returns {Promise<{ name: string, url: string, drop: () => Promise<void> }>}
 */
async function createDatabase(name) {
  if (!ADMIN_URL) throw new Error(MISSING)
  if (!swept) await sweep()
  let dbName = name
  if (!dbName) {
    const ready = spare
    spare = undefined
    dbName = ready ? await ready.catch(() => undefined) : undefined
    if (!dbName) {
      dbName = newName()
      await createDb(dbName)
    }
    const next = newName()
    spare = createDb(next).then(() => next)
    spare.catch(() => {})
  } else {
    await createDb(dbName)
  }
  let dropped = false
  return {
    name: dbName,
    url: urlFor(dbName),
    async drop() {
      if (dropped) return
      dropped = true
      const done = admin()
        .query(`DROP DATABASE IF EXISTS ${ident(dbName)} WITH (FORCE)`)
        .finally(() => dropping.delete(done))
      dropping.add(done)
      done.catch(() => {})
    },
  }
}

/** Drops the spare database and waits for every DROP (the root after hook of a test file that used the server). */
async function settle() {
  const last = spare
  spare = undefined
  if (last) {
    const name = await last.catch(() => undefined)
    if (name) await admin().query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`)
  }
  await Promise.all([...dropping])
}

if (ADMIN_URL) after(settle)

/**
 * Runs a query on one database through a short-lived pg Client.
 * @param {string} url
 * @param {string} text
 * @param {any[]} [values]
 */
async function query(url, text, values) {
  const { Client } = require('pg')
  const client = new Client({ connectionString: url })
  await client.connect()
  try {
    return await client.query(text, values)
  } finally {
    await client.end()
  }
}

module.exports = { ADMIN_URL, pgRequirement, describePg, admin, adminParts, urlFor, createDatabase, query, ident }
