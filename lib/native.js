'use strict'

const path = require('path')
const { codedError } = require('./errors')

const ADDON = path.join(__dirname, '..', 'native', 'evtstore-rs.node')

let binding
let loadError

/**
 * Loads the Rust core (once). Throws a clear error when the addon has not been
 * built, or was built without the stores this version needs.
 * @returns {{ MemoryStore: any, SqliteStore: any }}
 */
function loadNative() {
  if (binding) return binding
  if (loadError) throw loadError
  let mod
  try {
    mod = require(ADDON)
  } catch (cause) {
    const missing = cause && cause.code === 'MODULE_NOT_FOUND'
    loadError = codedError(
      'NATIVE_MISSING',
      missing
        ? `evtstore-rs: the native addon was not built (${ADDON} is missing): run npm install / npm run build`
        : `evtstore-rs: the native addon at ${ADDON} could not be loaded (${cause && cause.message}): ` +
            'rebuild it for this platform and Node version with npm run build'
    )
    loadError.cause = cause
    throw loadError
  }
  if (typeof mod.MemoryStore !== 'function' || typeof mod.SqliteStore !== 'function') {
    loadError = codedError(
      'NATIVE_MISSING',
      `evtstore-rs: the native addon at ${ADDON} is out of date (it has no MemoryStore/SqliteStore): ` +
        'run npm run build'
    )
    throw loadError
  }
  binding = mod
  return binding
}

/**
 * The native PostgreSQL store class. Throws NATIVE_MISSING when the addon was
 * built without it.
 * @returns {any}
 */
function loadPostgresStore() {
  const mod = loadNative()
  if (typeof mod.PostgresStore !== 'function') {
    throw codedError(
      'NATIVE_MISSING',
      `evtstore-rs: the native addon at ${ADDON} has no PostgreSQL store (it is out of date): run npm run build`
    )
  }
  return mod.PostgresStore
}

module.exports = { loadNative, loadPostgresStore, ADDON }
