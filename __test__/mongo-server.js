'use strict'
// The MongoDB-protocol server the tests use: its URL comes from
// EVTSTORE_TEST_MONGO_URL (`scripts/ferretdb.sh start` prints one). Without it
// the MongoDB tests are skipped with the reason, except under CI=true, where
// they fail and say so.
//
// Every provider instance gets a database of its own, dropped in its cleanup.
// The tests use the official `mongodb` driver (a dev dependency) for that and
// to look at the collections; the package itself never loads it.
const { describe, it, after } = require('node:test')
const crypto = require('node:crypto')

const URL_ = process.env.EVTSTORE_TEST_MONGO_URL || ''

const MISSING =
  'EVTSTORE_TEST_MONGO_URL is not set: start a server with `scripts/ferretdb.sh start` ' +
  'and export the URL it prints as EVTSTORE_TEST_MONGO_URL'

/**
 * { url } when a server was given; { skip: reason } without one;
 * { fail: message } under CI=true without one.
 */
function mongoRequirement() {
  if (URL_) return { url: URL_ }
  if (process.env.CI === 'true') {
    return { fail: `${MISSING}. Under CI=true the MongoDB tests must run (.ci/run starts the server).` }
  }
  return { skip: MISSING }
}

/**
 * describe() for tests that need the server: skipped with the reason when
 * there is none, or one failing test saying so under CI.
 * @param {string} name
 * @param {() => void} fn
 */
function describeMongo(name, fn) {
  const req = mongoRequirement()
  if (req.skip || req.fail) {
    return describe(name, () => {
      it('needs a MongoDB server', req.skip ? { skip: req.skip } : {}, () => {
        throw new Error(req.fail)
      })
    })
  }
  return describe(name, fn)
}

let client
/** One driver client for the test process (closed after the file). */
function driver() {
  if (!client) {
    const { MongoClient } = require('mongodb')
    client = new MongoClient(URL_, { serverSelectionTimeoutMS: 5000 })
  }
  return client
}

/** Closes the driver's client, so that the test process can exit. */
async function closeDriver() {
  const c = client
  client = undefined
  if (c) await c.close()
}

// loaded at the top of a test file: the client is closed after its tests
if (URL_) after(closeDriver)

let counter = 0

/**
 * A database of its own: { url, name, db (a driver Db), drop() }.
 */
async function createMongoDatabase() {
  const name = `evtstore_t_${process.pid}_${++counter}_${crypto.randomBytes(3).toString('hex')}`
  const db = driver().db(name)
  const url = new URL(URL_)
  url.pathname = '/' + name
  return {
    name,
    url: url.toString(),
    db,
    async drop() {
      await db.dropDatabase().catch(() => {})
    },
  }
}

module.exports = { mongoRequirement, describeMongo, createMongoDatabase, driver, closeDriver, MONGO_URL: URL_ }
