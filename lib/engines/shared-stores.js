'use strict'
// The one place that owns native stores in this process. Every provider on
// the same database and tables shares one native store (one pool, one
// listener, one head), so an append through one wakes the handlers of all;
// the store is counted and closed with its last provider. An engine adapter
// says what identifies the database (`key`) and how the store is held.

const { loadNative } = require('../native')
const { fromNative } = require('../errors')
const { quiet } = require('../util')

/**
 * What an engine adapter hands over: the typed options for `Store.open`, and
 * how the store is shared.
 * @typedef {object} StoreTarget
 * @property {string} key identifies the database and its tables in this process
 * @property {import('../native').StoreOptions} options handed to `Store.open` once
 * @property {object} [scope] one store per scope object and key, kept for the
 *   scope's lifetime and never closed by a release (SQLite ':memory:' through
 *   one knex instance is one database)
 * @property {boolean} [private] a store of its own, closed on release (SQLite
 *   ':memory:' on its own)
 * @property {boolean} [migrateOnOpen] create the tables when opened (nothing
 *   else could create them in a private ':memory:' database)
 * @property {(err: any) => any} [explain] adds to an error of this store what
 *   the user's settings were
 */

/**
 * A held store: `drop` gives it back.
 * @typedef {{ store: Promise<import('../native').Store>, drop: () => Promise<void> }} Hold
 */

/** @type {Map<string, { store: Promise<import('../native').Store>, refs: number }>} */
const shared = new Map()
/** @type {WeakMap<object, Map<string, Promise<import('../native').Store>>>} */
const scoped = new WeakMap()

/**
 * @param {StoreTarget} target
 * @returns {Promise<import('../native').Store>}
 */
async function open(target) {
  const { Store } = loadNative()
  /** @type {import('../native').Store | undefined} */
  let store
  try {
    store = await Store.open(target.options)
    if (target.migrateOnOpen) await store.migrate()
  } catch (err) {
    if (store) {
      try {
        await store.close()
      } catch {
        /* the open already failed: report that */
      }
    }
    const e = fromNative(err)
    throw target.explain ? target.explain(e) : e
  }
  return store
}

/** @param {Promise<import('../native').Store>} store */
async function closeOnceOpen(store) {
  const s = await store.catch(() => undefined)
  if (s) await s.close()
}

/**
 * @param {StoreTarget} target
 * @returns {Hold}
 */
function hold(target) {
  const { key, scope } = target
  if (scope) {
    let byKey = scoped.get(scope)
    if (!byKey) {
      byKey = new Map()
      scoped.set(scope, byKey)
    }
    const stores = byKey
    let store = stores.get(key)
    if (!store) {
      const opened = quiet(open(target))
      store = opened
      stores.set(key, opened)
      // a failed open is not kept: the next caller tries again
      opened.catch(() => {
        if (stores.get(key) === opened) stores.delete(key)
      })
    }
    return { store, drop: async () => {} }
  }
  if (target.private) {
    const store = quiet(open(target))
    return { store, drop: () => closeOnceOpen(store) }
  }
  let entry = shared.get(key)
  if (!entry) {
    const created = { store: quiet(open(target)), refs: 0 }
    entry = created
    shared.set(key, created)
    created.store.catch(() => {
      if (shared.get(key) === created) shared.delete(key)
    })
  }
  entry.refs++
  const held = entry
  return {
    store: held.store,
    async drop() {
      held.refs--
      if (held.refs > 0) return
      if (shared.get(key) === held) shared.delete(key)
      await closeOnceOpen(held.store)
    },
  }
}

/**
 * Opens (or shares) the native store of a target, which may still be being
 * read (a password function, a certificate file). `release` gives it back at
 * most once, also before the target is known.
 *
 * @param {StoreTarget | Promise<StoreTarget>} targetOrPromise
 * @returns {{
 *   store: Promise<import('../native').Store>,
 *   target: Promise<StoreTarget>,
 *   release: () => Promise<void>,
 * }}
 */
function acquire(targetOrPromise) {
  const target = quiet(Promise.resolve(targetOrPromise))
  /** @type {Hold | undefined} */
  let held
  let released = false
  const store = quiet(
    target.then((t) => {
      held = hold(t)
      return held.store
    })
  )
  return {
    store,
    target,
    async release() {
      if (released) return
      released = true
      await store.catch(() => undefined)
      const h = held
      held = undefined
      if (h) await h.drop()
    },
  }
}

/**
 * Creates the tables (idempotent) through a store acquired for the call.
 * @param {StoreTarget | Promise<StoreTarget>} targetOrPromise
 * @param {{ events: boolean, bookmarks: boolean }} [only] which tables (both by default)
 */
async function migrate(targetOrPromise, only = { events: true, bookmarks: true }) {
  const { store, target, release } = acquire(targetOrPromise)
  try {
    const s = await store
    try {
      await s.migrate(only.events, only.bookmarks)
    } catch (err) {
      const t = await target
      const e = fromNative(err)
      throw t.explain ? t.explain(e) : e
    }
  } finally {
    await release()
  }
}

module.exports = { acquire, migrate }
