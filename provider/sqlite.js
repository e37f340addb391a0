'use strict'

const { loadNative } = require('../lib/native')
const { createNativeProvider } = require('../lib/native-provider')
const { acquire, migrateStore, tableName, fileName, fileFromUrl } = require('../lib/sqlite-stores')
const { codedError } = require('../lib/errors')
const { assertPositiveInteger, isPlainObject, describe } = require('../lib/util')

/**
 * @param {any} opts
 * @param {string} fn
 */
function readOptions(opts, fn) {
  if (!isPlainObject(opts)) {
    throw codedError(
      'INVALID_ARGUMENT',
      `sqlite ${fn}: expected an options object such as { file: 'events.db' } or { url: 'sqlite:///path/events.db' }`,
      TypeError
    )
  }
  const hasFile = opts.file !== undefined
  const hasUrl = opts.url !== undefined
  if (hasFile && hasUrl) {
    throw codedError('INVALID_ARGUMENT', `sqlite ${fn}: give either "file" or "url", not both`, TypeError)
  }
  if (!hasFile && !hasUrl) {
    throw codedError(
      'INVALID_ARGUMENT',
      `sqlite ${fn}: "file" (a file name or ":memory:") or "url" (sqlite:///path/events.db) is required`,
      TypeError
    )
  }
  const file = hasUrl ? fileFromUrl(opts.url) : fileName(opts.file)
  const events = tableName(opts.events === undefined ? 'events' : opts.events, 'events')
  const bookmarks = tableName(opts.bookmarks === undefined ? 'bookmarks' : opts.bookmarks, 'bookmarks')
  return { file, events, bookmarks }
}

/**
 * A provider on an SQLite database file, run by the Rust core. Stores on the
 * same file and tables are shared in the process. ':memory:' gives a private
 * database with its tables already created.
 *
 * @param {{ file?: string, url?: string, events?: string, bookmarks?: string, limit?: number, onError?: Function }} opts
 */
function createProvider(opts) {
  const { file, events, bookmarks } = readOptions(opts, 'createProvider')
  if (opts.limit !== undefined) assertPositiveInteger(opts.limit, 'sqlite createProvider: limit')
  if (opts.onError !== undefined && typeof opts.onError !== 'function') {
    throw codedError(
      'INVALID_ARGUMENT',
      `sqlite createProvider: onError must be a function, got ${describe(opts.onError)}`,
      TypeError
    )
  }
  loadNative()
  const { store, release } = acquire({ file, events, bookmarks })
  return createNativeProvider({
    driver: 'sqlite',
    store,
    limit: opts.limit,
    onError: opts.onError,
    close: release,
  })
}

/**
 * Creates the events and bookmarks tables when missing (never drops).
 * @param {{ file?: string, url?: string, events?: string, bookmarks?: string }} opts
 */
async function migrate(opts) {
  const { file, events, bookmarks } = readOptions(opts, 'migrate')
  await migrateStore({ file, events, bookmarks })
}

module.exports = { createProvider, migrate }
