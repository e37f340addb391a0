'use strict'
// What provider/postgres.js and provider/pg.js share: option checks, and a
// Provider on a shared native PostgreSQL store.

const { loadPostgresStore } = require('./native')
const { createNativeProvider } = require('./native-provider')
const { acquire, migrateStore, explain } = require('./postgres-stores')
const { fromUrl } = require('./postgres-config')
const { tableName } = require('./sqlite-stores')
const { codedError } = require('./errors')
const { assertPositiveInteger, isPlainObject, describe, quiet } = require('./util')

/**
 * @typedef {import('./postgres-config').Settings} Settings
 * @typedef {{ settings: Promise<Settings>, events: string, bookmarks: string }} Target
 */

/**
 * Checks the options every form shares and reads the connection settings.
 *
 * @param {any} opts
 * @param {object} form
 * @param {string} form.what e.g. 'postgres createProvider'
 * @param {string} form.driverKey 'sql' or 'client'
 * @param {string} form.example the driver form, for messages
 * @param {(driver: any) => void} form.check synchronous check of the driver object
 * @param {(driver: any) => Promise<Settings>} form.read reads the settings from the driver object
 * @returns {Target & { form: 'url' | 'driver' }}
 */
function readTarget(opts, { what, driverKey, example, check, read }) {
  if (!isPlainObject(opts)) {
    throw codedError(
      'INVALID_ARGUMENT',
      `${what}: expected an options object such as { url: 'postgres://user:password@host:5432/database' } ` +
        `or ${example}, got ${describe(opts)}`,
      TypeError
    )
  }
  const hasUrl = opts.url !== undefined
  const hasDriver = opts[driverKey] !== undefined
  if (hasUrl && hasDriver) {
    throw codedError('INVALID_ARGUMENT', `${what}: give either "url" or "${driverKey}", not both`, TypeError)
  }
  if (!hasUrl && !hasDriver) {
    throw codedError(
      'INVALID_ARGUMENT',
      `${what}: "url" (postgres://user:password@host:5432/database) or "${driverKey}" (${example}) is required`,
      TypeError
    )
  }
  const events = tableName(opts.events === undefined ? 'events' : opts.events, 'events')
  const bookmarks = tableName(opts.bookmarks === undefined ? 'bookmarks' : opts.bookmarks, 'bookmarks')
  let maxConnections
  if (opts.maxConnections !== undefined) {
    assertPositiveInteger(opts.maxConnections, `${what}: maxConnections`)
    maxConnections = opts.maxConnections
  }
  /** @type {Promise<Settings>} */
  let settings
  if (hasUrl) {
    settings = Promise.resolve(fromUrl(opts.url, what))
  } else {
    check(opts[driverKey])
    settings = read(opts[driverKey])
  }
  if (maxConnections !== undefined) {
    const max = maxConnections
    settings = settings.then((s) => ({ ...s, maxConnections: max }))
  }
  return { settings: quiet(settings), events, bookmarks, form: hasUrl ? 'url' : 'driver' }
}

/**
 * @param {any} opts
 * @param {string} what
 */
function checkProviderOptions(opts, what) {
  if (opts.limit !== undefined) assertPositiveInteger(opts.limit, `${what}: limit`)
  if (opts.onError !== undefined && typeof opts.onError !== 'function') {
    throw codedError(
      'INVALID_ARGUMENT',
      `${what}: onError must be a function, got ${describe(opts.onError)}`,
      TypeError
    )
  }
}

/**
 * A Provider on the shared native store of `target`.
 * @param {Target} target
 * @param {{ driver: string, limit?: number, onError?: Function }} opts
 */
function postgresProvider(target, opts) {
  loadPostgresStore()
  const { store, settings, release } = acquire(target.settings, target)
  /** @type {Settings | undefined} */
  let known
  settings.then((s) => (known = s)).catch(() => {})
  return createNativeProvider({
    driver: opts.driver,
    store,
    limit: opts.limit,
    onError: opts.onError,
    close: release,
    explain: (err) => explain(err, known),
  })
}

/**
 * Creates the tables of `target` when missing (never drops anything).
 * @param {Target} target
 */
async function postgresMigrate(target) {
  loadPostgresStore()
  await migrateStore(target.settings, target)
}

module.exports = { readTarget, checkProviderOptions, postgresProvider, postgresMigrate }
