'use strict'
// Finds the Rust core for this machine: a binary built from the shipped source
// (native/, by a contributor's `npm run build`, or by `npx evtstore-rs-build`
// where no prebuilt binary fits), else the prebuilt binary of the platform
// package that the package manager installed as an optional dependency
// (npm/<platform>/ in the repository).

const fs = require('fs')
const path = require('path')
const { codedError } = require('./errors')
const pkg = require('../package.json')

/** Where a binary built from source is placed (`npm run build`, `npx evtstore-rs-build`). */
const ADDON = path.join(__dirname, '..', 'native', `${pkg.napi.binaryName}.node`)

/**
 * The addon's exports and types, as `npm run build` generates them.
 * @typedef {typeof import('../native/native')} NativeModule
 * @typedef {import('../native/native').Store} Store
 * @typedef {import('../native/native').StoreOptions} StoreOptions
 * @typedef {import('../native/native').SqliteOptions} SqliteOptions
 * @typedef {import('../native/native').PostgresOptions} PostgresOptions
 * @typedef {import('../native/native').MysqlOptions} MysqlOptions
 * @typedef {import('../native/native').MongoOptions} MongoOptions
 * @typedef {import('../native/native').Neo4jOptions} Neo4jOptions
 * @typedef {Awaited<ReturnType<Store['eventsFrom']>>} EventBatch a read: the JSON columns and the numbers beside them
 * @typedef {import('../native/native').MemoryStore} MemoryStore
 * @typedef {import('../native/native').Waiter} Waiter
 */

/** What this version of the facade needs from the addon. */
const CLASSES = /** @type {const} */ (['Store', 'MemoryStore', 'Waiter'])

/**
 * The C library of a Linux machine, as napi-rs names the two ABIs. The cheap
 * probe first: the text of ldd says which libc it belongs to; when that file
 * is absent or says neither, Node's own report tells whether it runs on glibc.
 * @returns {'gnu' | 'musl'}
 */
function linuxLibc() {
  try {
    const ldd = fs.readFileSync('/usr/bin/ldd', 'latin1')
    if (ldd.includes('musl')) return 'musl'
    if (ldd.includes('GNU C Library') || ldd.includes('glibc')) return 'gnu'
  } catch {
    // no ldd: many musl images (Alpine without the musl-utils package)
  }
  const report = /** @type {any} */ (process.report && process.report.getReport())
  if (report && report.header && report.header.glibcVersionRuntime) return 'gnu'
  const libs = (report && report.sharedObjects) || []
  return libs.some((/** @type {string} */ lib) => /ld-musl-|libc\.musl-/.test(lib)) ? 'musl' : 'gnu'
}

/**
 * The napi-rs name of a platform, which ends the name of its package and of
 * its binary: linux-x64-gnu, linux-arm64-musl, darwin-arm64, win32-x64-msvc.
 * @param {{ platform: string, arch: string, libc?: 'gnu' | 'musl' }} [on] a machine (default: this one)
 */
function platformName(on) {
  const platform = on ? on.platform : process.platform
  const arch = on ? on.arch : process.arch
  if (platform === 'linux') return `${platform}-${arch}-${(on && on.libc) || linuxLibc()}`
  if (platform === 'win32') return `${platform}-${arch}-msvc`
  return `${platform}-${arch}`
}

/** The platform names a prebuilt package is published for (package.json napi.targets, via the napi CLI's naming). */
function prebuiltPlatforms() {
  return Object.keys(pkg.optionalDependencies || {})
    .filter((name) => name.startsWith(`${pkg.napi.packageName}-`))
    .map((name) => name.slice(pkg.napi.packageName.length + 1))
}

/**
 * Where the addon may be, in the order they are tried.
 * @param {string} [platform] a napi-rs platform name (default: this machine's)
 * @returns {{ label: string, request: string }[]} what is required, and how a message names it
 */
function candidates(platform = platformName()) {
  const prebuilt = `${pkg.napi.packageName}-${platform}`
  return [
    { label: `a binary built from source at ${ADDON}`, request: ADDON },
    { label: `the prebuilt package ${prebuilt}`, request: prebuilt },
  ]
}

/**
 * What to tell a user for whom no candidate loaded.
 * @param {string} platform
 * @param {string[]} tried one line per candidate: what, and why it did not load
 */
function missingMessage(platform, tried) {
  const published = prebuiltPlatforms()
  const where = `${platform} (Node ${process.versions.node})`
  const prebuiltHint = published.includes(platform)
    ? `A prebuilt binary exists for ${platform}: it is the optional dependency ${pkg.napi.packageName}-${platform}@${pkg.version}, ` +
      'which is left out when optional dependencies are omitted (--omit=optional, --no-optional) or when a lock file ' +
      'written on another platform was installed; install it (or delete node_modules and the lock file, and install again). '
    : `No prebuilt binary is published for ${platform} (there are for ${published.join(', ')}), so it must be built from source. `
  return (
    `evtstore-rs: no native addon could be loaded on ${where}. Looked for: ${tried.join('; ')}. ` +
    prebuiltHint +
    'To build it from the Rust source the package ships: install Rust from https://rustup.rs ' +
    '(check with `cargo --version`), then run `npx evtstore-rs-build` in your project ' +
    '(pnpm: `pnpm exec evtstore-rs-build`; in the evtstore-rs repository: `npm run build`).'
  )
}

/**
 * Requires the first candidate that loads.
 * @returns {{ mod: any, from: string } | { error: Error }}
 */
function findAddon() {
  const platform = platformName()
  /** @type {string[]} */
  const tried = []
  /** @type {unknown} */
  let firstFailure
  for (const { label, request } of candidates(platform)) {
    try {
      return { mod: require(request), from: label }
    } catch (cause) {
      const e = /** @type {any} */ (cause)
      const notThere = e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(request)
      tried.push(`${label} (${notThere ? 'not installed' : `could not be loaded: ${e && e.message}`})`)
      if (!notThere && firstFailure === undefined) firstFailure = cause
    }
  }
  const error = codedError('NATIVE_MISSING', missingMessage(platform, tried))
  if (firstFailure !== undefined) error.cause = firstFailure
  return { error }
}

/** @type {NativeModule | undefined} */
let binding
/** @type {Error | undefined} */
let loadError

/**
 * Loads the Rust core (once). Throws a NATIVE_MISSING error that says what was
 * looked for and what to do when no binary loads, or the one that loaded lacks
 * the classes this version needs.
 * @returns {NativeModule}
 */
function loadNative() {
  if (binding) return binding
  if (loadError) throw loadError
  const found = findAddon()
  if ('error' in found) {
    loadError = found.error
    throw loadError
  }
  const absent = CLASSES.filter((name) => typeof found.mod[name] !== 'function')
  if (absent.length > 0) {
    loadError = codedError(
      'NATIVE_MISSING',
      `evtstore-rs: ${found.from} is out of date (it has no ${absent.join('/')}): ` +
        'reinstall evtstore-rs (in this repository: npm run build)'
    )
    throw loadError
  }
  binding = /** @type {NativeModule} */ (found.mod)
  return binding
}

module.exports = { loadNative, ADDON, platformName, prebuiltPlatforms, candidates }
