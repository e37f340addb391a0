'use strict'

const path = require('path')
const { loadNative } = require('./native')
const { codedError, fromNative } = require('./errors')
const { describe, quiet } = require('./util')

const SAFE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
const MEMORY = ':memory:'

/**
 * @param {any} name
 * @param {string} what
 * @returns {string}
 */
function tableName(name, what) {
  if (typeof name !== 'string' || !SAFE_NAME.test(name)) {
    throw codedError(
      'INVALID_NAME',
      `${what} table name ${describe(name)} is not allowed: use letters, digits and _ ` +
        '(not starting with a digit, at most 63 characters)',
      TypeError
    )
  }
  return name
}

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

/** @type {Map<string, { store: Promise<any>, refs: number }>} */
const shared = new Map()
/** @type {WeakMap<object, Map<string, Promise<any>>>} */
const scopedMemory = new WeakMap()

/**
 * @param {string} file
 * @param {string} events
 * @param {string} bookmarks
 * @param {boolean} migrate
 */
async function open(file, events, bookmarks, migrate) {
  const { SqliteStore } = loadNative()
  let store
  try {
    store = await SqliteStore.open({ file, events, bookmarks })
    if (migrate) await store.migrate()
  } catch (err) {
    if (store) {
      try {
        await store.close()
      } catch {
        /* the open already failed: report that */
      }
    }
    throw fromNative(err)
  }
  return store
}

/**
 * Opens (or shares) a native SqliteStore.
 *
 * - A file: one store per (absolute path, table names) in this process,
 *   counted; the last release closes it. Every store on one database wakes
 *   every handler on it.
 * - ':memory:' with a `scope` object (a knex client): one store per scope and
 *   table names, kept for the scope's lifetime (migrate() and createProvider()
 *   through one knex instance see one database).
 * - ':memory:' without scope: a private database, closed on release.
 *
 * ':memory:' databases get their tables at once: nothing else could create them.
 *
 * @param {{ file: string, events: string, bookmarks: string, scope?: object, only?: { events: boolean, bookmarks: boolean } }} opts  `only`: which tables to create (both by default)
 * @returns {{ store: Promise<any>, release: () => Promise<void> }}
 */
function acquire(opts) {
  const { events, bookmarks, scope } = opts
  const file = opts.file
  if (file === MEMORY) {
    if (scope) {
      let byTables = scopedMemory.get(scope)
      if (!byTables) {
        byTables = new Map()
        scopedMemory.set(scope, byTables)
      }
      const key = `${events}\0${bookmarks}`
      let store = byTables.get(key)
      if (!store) {
        store = quiet(open(MEMORY, events, bookmarks, true))
        byTables.set(key, store)
        // a failed open is not kept: the next caller tries again
        store.catch(() => {
          if (byTables && byTables.get(key) === store) byTables.delete(key)
        })
      }
      return { store, release: async () => {} }
    }
    const store = quiet(open(MEMORY, events, bookmarks, true))
    let released = false
    return {
      store,
      release: async () => {
        if (released) return
        released = true
        const s = await store.catch(() => undefined)
        if (s) await s.close()
      },
    }
  }

  const absolute = path.resolve(file)
  const key = `${absolute}\0${events}\0${bookmarks}`
  let entry = shared.get(key)
  if (!entry) {
    const store = quiet(open(absolute, events, bookmarks, false))
    const created = { store, refs: 0 }
    entry = created
    shared.set(key, created)
    store.catch(() => {
      if (shared.get(key) === created) shared.delete(key)
    })
  }
  entry.refs++
  const held = entry
  let released = false
  return {
    store: held.store,
    release: async () => {
      if (released) return
      released = true
      held.refs--
      if (held.refs > 0) return
      if (shared.get(key) === held) shared.delete(key)
      const s = await held.store.catch(() => undefined)
      if (s) await s.close()
    },
  }
}

/**
 * Creates the tables (idempotent) through a store acquired for the call.
 * @param {{ file: string, events: string, bookmarks: string, scope?: object, only?: { events: boolean, bookmarks: boolean } }} opts  `only`: which tables to create (both by default)
 */
async function migrateStore(opts) {
  const { store, release } = acquire(opts)
  const only = opts.only || { events: true, bookmarks: true }
  try {
    const s = await store
    try {
      await s.migrate(only.events, only.bookmarks)
    } catch (err) {
      throw fromNative(err)
    }
  } finally {
    await release()
  }
}

module.exports = { acquire, migrateStore, tableName, fileName, fileFromUrl, MEMORY, SAFE_NAME }
