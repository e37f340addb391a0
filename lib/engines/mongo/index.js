'use strict'
// The MongoDB adapter: what the user hands in -> the typed options of
// Store.open({ mongo }).
//
// - Native-first: { url, database?, events?, bookmarks? } with collection
//   names as strings.
// - evtstore's form: Collections of the official `mongodb` driver (4.x to
//   6.x), or Promises of them. Only their properties are read (the client's
//   connection string, the database and collection names): the driver is
//   never required here, and the events are stored through the core's own
//   connection pool.

const { codedError } = require('../../errors')
const { describe, isPlainObject, isThenable, quiet } = require('../../util')
const { tableName } = require('../tables')

/**
 * @typedef {{ url: string, database: string, name: string }} Place where a
 *   driver Collection lives
 */

/**
 * @param {string} what
 * @param {string} message
 */
function invalid(what, message) {
  return codedError('INVALID_ARGUMENT', `${what}: ${message}`, TypeError)
}

/**
 * @param {any} url
 * @param {string} what
 */
function checkUrl(url, what) {
  if (typeof url !== 'string' || !/^mongodb(\+srv)?:\/\/./.test(url)) {
    throw invalid(what, `"url" must be a mongodb:// or mongodb+srv:// connection string, got ${describe(url)}`)
  }
  return url
}

/**
 * A database name, when given apart from the url.
 * @param {any} name
 * @param {string} what
 */
function databaseName(name, what) {
  if (typeof name !== 'string' || name === '' || /[/\\. "$\0]/.test(name) || name.length > 63) {
    throw codedError(
      'INVALID_NAME',
      `${what}: database name ${describe(name)} is not allowed: use 1 to 63 characters without / \\ . space " $`,
      TypeError
    )
  }
  return name
}

/**
 * @param {number | undefined} ms
 * @param {string} what
 */
function abandonAfter(ms, what) {
  if (ms === undefined) return undefined
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 1 || ms > 86400000) {
    throw invalid(what, `abandonAfterMs must be a number of milliseconds from 1 to 86400000, got ${describe(ms)}`)
  }
  return ms
}

/**
 * The store target of one database and its two collections. Stores with the
 * same options are one store in this process.
 * @param {import('../../native').MongoOptions} options
 * @returns {import('../shared-stores').StoreTarget}
 */
function mongoTarget(options) {
  return { key: `mongo\0${JSON.stringify(options)}`, options: { mongo: options } }
}

/**
 * Native-first options: { url, database?, events?, bookmarks?, abandonAfterMs? }.
 * @param {any} opts
 * @param {string} what e.g. 'mongo createProvider'
 * @returns {import('../shared-stores').StoreTarget}
 */
function fromUrlOptions(opts, what) {
  const url = checkUrl(opts.url, what)
  /** @type {import('../../native').MongoOptions} */
  const options = {
    url,
    events: tableName(opts.events === undefined ? 'events' : opts.events, 'events'),
    bookmarks: tableName(opts.bookmarks === undefined ? 'bookmarks' : opts.bookmarks, 'bookmarks'),
  }
  if (opts.database !== undefined) options.database = databaseName(opts.database, what)
  const ms = abandonAfter(opts.abandonAfterMs, what)
  if (ms !== undefined) options.abandonAfterMs = ms
  return mongoTarget(options)
}

/**
 * Whether a value looks like a Collection of the official driver.
 * @param {any} value
 */
function isCollection(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.collectionName === 'string' &&
    typeof value.insertMany === 'function'
  )
}

/**
 * The client of a Collection: `collection.client` (driver 5 and 6) or its
 * Db's (driver 4).
 * @param {any} collection
 */
function clientOf(collection) {
  if (collection.client) return collection.client
  const db = collection.s && collection.s.db
  return db && ((db.s && db.s.client) || db.client)
}

/**
 * The connection string of a MongoClient, with the user and password it was
 * given apart from the url (`new MongoClient(url, { auth })`) put in.
 * @param {any} client
 * @param {string} what
 */
function connectionString(client, what) {
  const url = client && client.s && client.s.url
  if (typeof url !== 'string') {
    throw invalid(what, 'the Collection has no MongoClient connection string (collection.client.s.url) to read')
  }
  const credentials = client.options && client.options.credentials
  if (!credentials || !credentials.username) return url
  const parsed = new URL(url.replace(/^mongodb(\+srv)?:/, 'http:'))
  if (parsed.username) return url
  const scheme = url.startsWith('mongodb+srv:') ? 'mongodb+srv://' : 'mongodb://'
  const auth = `${encodeURIComponent(credentials.username)}:${encodeURIComponent(credentials.password || '')}@`
  let out = scheme + auth + url.slice(scheme.length)
  if (credentials.source && !/[?&]authSource=/.test(url)) {
    out += `${url.includes('?') ? '&' : '?'}authSource=${encodeURIComponent(credentials.source)}`
  }
  return out
}

/**
 * Where a driver Collection lives.
 * @param {any} collection
 * @param {string} which 'events' or 'bookmarks'
 * @param {string} what
 * @returns {Place}
 */
function placeOf(collection, which, what) {
  if (!isCollection(collection)) {
    throw invalid(
      what,
      `"${which}" must be a Collection of the mongodb driver (db.collection('${which}')) or a Promise of one, got ${describe(collection)}`
    )
  }
  const database = collection.dbName || (collection.namespace && String(collection.namespace).split('.')[0])
  if (typeof database !== 'string' || database === '') {
    throw invalid(what, `the "${which}" Collection has no database name (collection.dbName)`)
  }
  return { url: connectionString(clientOf(collection), what), database, name: collection.collectionName }
}

/**
 * evtstore's form: the events and bookmarks Collections (or Promises of
 * them), which must be on one server and database.
 * @param {any} events
 * @param {any} bookmarks
 * @param {string} what
 * @param {{ abandonAfterMs?: number }} [extra]
 * @returns {Promise<import('../shared-stores').StoreTarget>}
 */
async function fromCollections(events, bookmarks, what, extra = {}) {
  const [e, b] = await Promise.all([events, bookmarks])
  const ev = placeOf(e, 'events', what)
  const bm = placeOf(b, 'bookmarks', what)
  if (ev.url !== bm.url || ev.database !== bm.database) {
    throw invalid(
      what,
      `the events and bookmarks Collections must be in one database of one MongoClient, got ${ev.database} and ${bm.database}`
    )
  }
  /** @type {import('../../native').MongoOptions} */
  const options = { url: ev.url, database: ev.database, events: ev.name, bookmarks: bm.name }
  if (extra.abandonAfterMs !== undefined) options.abandonAfterMs = extra.abandonAfterMs
  return mongoTarget(options)
}

/**
 * The target of a provider's options, in either form, checked at once where
 * it can be (a Promise of a Collection is checked once it resolves).
 * @param {any} opts
 * @param {string} what
 * @returns {import('../shared-stores').StoreTarget | Promise<import('../shared-stores').StoreTarget>}
 */
function fromMongoOptions(opts, what) {
  if (!isPlainObject(opts)) {
    throw invalid(
      what,
      `expected an options object such as { url: 'mongodb://127.0.0.1:27017/app' } or ` +
        `{ events: db.collection('events'), bookmarks: db.collection('bookmarks') }, got ${describe(opts)}`
    )
  }
  if (opts.url !== undefined) {
    for (const key of ['events', 'bookmarks']) {
      if (opts[key] !== undefined && typeof opts[key] !== 'string') {
        throw invalid(what, `with "url", "${key}" is a collection name (a string), got ${describe(opts[key])}`)
      }
    }
    return fromUrlOptions(opts, what)
  }
  if (opts.events === undefined || opts.bookmarks === undefined) {
    throw invalid(
      what,
      '"url" (mongodb://host:27017/database) or both "events" and "bookmarks" Collections of the mongodb driver are required'
    )
  }
  const abandonAfterMs = abandonAfter(opts.abandonAfterMs, what)
  for (const key of ['events', 'bookmarks']) {
    const value = opts[key]
    if (!isThenable(value)) placeOf(value, key, what)
  }
  return quiet(fromCollections(opts.events, opts.bookmarks, what, { abandonAfterMs }))
}

module.exports = { fromMongoOptions, fromCollections, isCollection }
