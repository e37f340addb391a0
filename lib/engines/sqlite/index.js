'use strict'
// The SQLite adapter: what the user names (a file, a sqlite: url, the
// connection of a knex sqlite3 or better-sqlite3 instance) -> the typed
// options of Store.open({ sqlite }) and how the store is shared.
//
// - A file: one store per absolute path and table names in this process.
// - ':memory:' through a knex instance: one database per knex instance and
//   table names (migrate() and createProvider() through it see one database).
// - ':memory:' on its own: a private database, with its tables at once.

const path = require('path')
const { codedError } = require('../../errors')
const { describe, isPlainObject } = require('../../util')
const { readTables } = require('../tables')

const MEMORY = ':memory:'

/**
 * @param {any} file
 * @returns {string}
 */
function fileName(file) {
  if (typeof file !== 'string' || file.trim() === '') {
    throw codedError(
      'INVALID_ARGUMENT',
      `sqlite: "file" must be a non-empty file name (or ":memory:"), got ${describe(file)}`,
      TypeError
    )
  }
  if (file.includes('\0')) {
    throw codedError('INVALID_ARGUMENT', 'sqlite: "file" must not contain a NUL character', TypeError)
  }
  return file
}

/**
 * 'sqlite:///abs/path.db', 'sqlite://relative.db', 'sqlite:relative.db',
 * 'sqlite::memory:' or 'sqlite://:memory:' -> a file name for the store.
 * @param {any} url
 * @returns {string}
 */
function fileFromUrl(url) {
  const malformed = (/** @type {string} */ why) =>
    codedError(
      'INVALID_ARGUMENT',
      `sqlite: malformed url ${describe(url)}: ${why} ` +
        '(expected sqlite:///absolute/path.db, sqlite://relative/path.db or sqlite::memory:)',
      TypeError
    )
  if (typeof url !== 'string') throw malformed('not a string')
  if (!/^sqlite:/i.test(url)) throw malformed('it must start with "sqlite:"')
  let rest = url.slice('sqlite:'.length)
  if (rest.includes('?') || rest.includes('#')) throw malformed('query parameters and fragments are not supported')
  if (rest === MEMORY || rest === '//' + MEMORY) return MEMORY
  if (rest.startsWith('//')) rest = rest.slice(2)
  try {
    rest = decodeURIComponent(rest)
  } catch {
    throw malformed('bad percent-encoding')
  }
  if (rest.trim() === '') throw malformed('no file name')
  if (rest.includes('\0')) throw malformed('NUL character in the file name')
  return rest
}

/**
 * How a file is written: `synchronous` ('full', the default, or 'normal')
 * and `journalMode` ('wal', the default, or 'delete'), checked.
 * @param {any} opts
 * @param {string} fn for messages
 * @returns {{ synchronous: string, journalMode: string }}
 */
function readDurability(opts, fn) {
  const pick = (/** @type {string} */ name, /** @type {string[]} */ allowed, /** @type {string} */ why) => {
    const value = opts[name] === undefined ? allowed[0] : opts[name]
    if (!allowed.includes(value)) {
      throw codedError(
        'INVALID_ARGUMENT',
        `sqlite ${fn}: "${name}" must be ${allowed.map((a) => `'${a}'`).join(' or ')} (${why}), got ${describe(opts[name])}`,
        TypeError
      )
    }
    return value
  }
  return {
    synchronous: pick(
      'synchronous',
      ['full', 'normal'],
      "'full', the default: every write is on disk when it resolves; 'normal': faster, a power cut or OS crash may lose writes that resolved"
    ),
    journalMode: pick('journalMode', ['wal', 'delete'], "'wal', the default, or 'delete' for SQLite's rollback journal"),
  }
}

/**
 * The store of a database file (or ':memory:') and its tables.
 * @param {string} file a checked file name
 * @param {import('../tables').Tables} tables
 * @param {object} [scope] the knex client a ':memory:' database belongs to
 * @param {{ synchronous: string, journalMode: string }} [durability] how a file is written (readDurability)
 * @returns {import('../shared-stores').StoreTarget}
 */
function sqliteTarget(file, { events, bookmarks }, scope, durability = { synchronous: 'full', journalMode: 'wal' }) {
  if (file === MEMORY) {
    const options = { sqlite: { file: MEMORY, events, bookmarks } }
    const key = `sqlite\0${MEMORY}\0${events}\0${bookmarks}`
    return scope ? { key, options, scope, migrateOnOpen: true } : { key, options, private: true, migrateOnOpen: true }
  }
  const absolute = path.resolve(file)
  const { synchronous, journalMode } = durability
  return {
    key: `sqlite\0${absolute}\0${events}\0${bookmarks}\0${synchronous}\0${journalMode}`,
    options: { sqlite: { file: absolute, events, bookmarks, synchronous, journalMode } },
  }
}

/**
 * The options of provider/sqlite ({ file } or { url }, and table names) -> its target.
 * @param {any} opts
 * @param {string} fn 'createProvider' or 'migrate', for messages
 * @returns {import('../shared-stores').StoreTarget}
 */
function fromSqliteOptions(opts, fn) {
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
  return sqliteTarget(file, readTables(opts), undefined, readDurability(opts, fn))
}

module.exports = { fromSqliteOptions, sqliteTarget, readDurability, fileName, fileFromUrl, MEMORY }
