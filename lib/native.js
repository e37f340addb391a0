'use strict'

const path = require('path')
const { codedError } = require('./errors')

const ADDON = path.join(__dirname, '..', 'native', 'evtstore-rs.node')
/** This machine, as the messages name it. */
const PLATFORM = `${process.platform}-${process.arch} (Node ${process.versions.node})`

/**
 * The addon's exports and types, as `npm run build` generates them.
 * @typedef {typeof import('../native/native')} NativeModule
 * @typedef {import('../native/native').Store} Store
 * @typedef {import('../native/native').StoreOptions} StoreOptions
 * @typedef {import('../native/native').SqliteOptions} SqliteOptions
 * @typedef {import('../native/native').PostgresOptions} PostgresOptions
 * @typedef {import('../native/native').MongoOptions} MongoOptions
 * @typedef {Awaited<ReturnType<Store['eventsFrom']>>} EventBatch a read: the JSON columns and the numbers beside them
 * @typedef {import('../native/native').MemoryStore} MemoryStore
 * @typedef {import('../native/native').Waiter} Waiter
 */

/** What this version of the facade needs from the addon. */
const CLASSES = /** @type {const} */ (['Store', 'MemoryStore', 'Waiter'])

/** @type {NativeModule | undefined} */
let binding
/** @type {Error | undefined} */
let loadError

/**
 * Loads the Rust core (once). Throws a clear error when the addon has not been
 * built, or was built without the classes this version needs.
 * @returns {NativeModule}
 */
function loadNative() {
  if (binding) return binding
  if (loadError) throw loadError
  /** @type {any} */
  let mod
  try {
    mod = require(ADDON)
  } catch (cause) {
    const missing = !!cause && /** @type {any} */ (cause).code === 'MODULE_NOT_FOUND'
    const err = codedError(
      'NATIVE_MISSING',
      missing
        ? `evtstore-rs: the native addon for ${PLATFORM} was not built (${ADDON} is missing). ` +
            'It is compiled when the package is installed; if your package manager skipped the install script ' +
            '(pnpm 10 does by default), run `pnpm approve-builds` and then `pnpm rebuild evtstore-rs` ' +
            '(with npm: `npm rebuild evtstore-rs`; in this repository: `npm run build`). ' +
            'Building needs a Rust toolchain: install it from https://rustup.rs if `cargo --version` fails.'
        : `evtstore-rs: the native addon at ${ADDON} could not be loaded on ${PLATFORM} ` +
            `(${cause && /** @type {any} */ (cause).message}): rebuild it for this platform and Node version ` +
            'with `npm rebuild evtstore-rs` (in this repository: `npm run build`).'
    )
    err.cause = cause
    loadError = err
    throw err
  }
  const absent = CLASSES.filter((name) => typeof mod[name] !== 'function')
  if (absent.length > 0) {
    loadError = codedError(
      'NATIVE_MISSING',
      `evtstore-rs: the native addon at ${ADDON} is out of date (it has no ${absent.join('/')}): run npm run build`
    )
    throw loadError
  }
  binding = /** @type {NativeModule} */ (mod)
  return binding
}

module.exports = { loadNative, ADDON }
