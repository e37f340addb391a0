#!/usr/bin/env node
'use strict'
// The package's install script. In a user's node_modules it does nothing when
// a binary loads (the prebuilt platform package, the usual case); otherwise it
// builds the addon from the shipped Rust source with cargo, in a temporary
// target folder that it deletes, so node_modules keeps only the .node file.
// Without cargo it warns and lets the install finish: the first use then
// throws NATIVE_MISSING with the same advice. In the repository itself (a
// contributor's `npm install`) it always builds, with `npm run build`.
//
// EVTSTORE_RS_BUILD_FROM_SOURCE=1 builds even when a prebuilt binary loads.
// A CARGO_TARGET_DIR of the caller's is used as it is, and kept.

const fs = require('fs')
const os = require('os')
const path = require('path')
const { spawnSync } = require('child_process')

const PACKAGE_DIR = path.join(__dirname, '..')
const { ADDON, platformName } = require('../lib/native')

/** Installed as a dependency (node_modules/evtstore-rs, also under pnpm's and yarn's folders), not a checkout. */
function installedAsDependency() {
  return path.basename(path.dirname(fs.realpathSync(PACKAGE_DIR))) === 'node_modules'
}

/** Whether an addon loads, asked of a fresh process so that a later build is seen. */
function addonLoads() {
  const check = "require('./lib/native').loadNative()"
  return spawnSync(process.execPath, ['-e', check], { cwd: PACKAGE_DIR, stdio: 'ignore' }).status === 0
}

function cargoWorks() {
  const run = spawnSync('cargo', ['--version'], { stdio: 'ignore' })
  return !run.error && run.status === 0
}

/** @param {string} message */
function warn(message) {
  process.stderr.write(`\nevtstore-rs: ${message}\n\n`)
}

/**
 * `cargo build --release --lib` with JSON messages on stdout, from which the
 * path of the built library (.so, .dylib or .dll) is read.
 * @param {string} targetDir
 * @returns {string} the built library
 */
function cargoBuild(targetDir) {
  const run = spawnSync(
    'cargo',
    ['build', '--release', '--lib', '--locked', '--message-format=json-render-diagnostics'],
    {
      cwd: PACKAGE_DIR,
      env: { ...process.env, CARGO_TARGET_DIR: targetDir },
      stdio: ['ignore', 'pipe', 'inherit'],
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    }
  )
  if (run.error || run.status !== 0) {
    throw new Error(`cargo build failed (${run.error ? run.error.message : `exit code ${run.status}`}); its messages are above`)
  }
  for (const line of run.stdout.split('\n')) {
    if (!line.startsWith('{')) continue
    const msg = JSON.parse(line)
    if (msg.reason === 'compiler-artifact' && msg.target.kind.includes('cdylib')) {
      const lib = msg.filenames.find((/** @type {string} */ f) => /\.(so|dylib|dll)$/.test(f))
      if (lib) return lib
    }
  }
  throw new Error('cargo build reported no cdylib')
}

function buildFromSource() {
  const ownTarget = !process.env.CARGO_TARGET_DIR
  const targetDir = process.env.CARGO_TARGET_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'evtstore-rs-build-'))
  process.stderr.write(`evtstore-rs: building the native addon from source for ${platformName()} (a few minutes)\n`)
  try {
    const lib = cargoBuild(targetDir)
    fs.mkdirSync(path.dirname(ADDON), { recursive: true })
    fs.copyFileSync(lib, ADDON)
  } finally {
    if (ownTarget) fs.rmSync(targetDir, { recursive: true, force: true })
  }
}

function main() {
  if (!installedAsDependency()) {
    // a contributor's checkout: the Rust source may have changed, so build it
    const npm = process.env.npm_execpath
    const run = npm
      ? spawnSync(process.execPath, [npm, 'run', 'build'], { cwd: PACKAGE_DIR, stdio: 'inherit' })
      : spawnSync('npm', ['run', 'build'], { cwd: PACKAGE_DIR, stdio: 'inherit', shell: true })
    process.exit(run.status === null ? 1 : run.status)
  }
  if (!process.env.EVTSTORE_RS_BUILD_FROM_SOURCE && addonLoads()) return
  if (!cargoWorks()) {
    warn(
      `no prebuilt binary loads on ${platformName()} (Node ${process.versions.node}) and cargo is not on PATH, ` +
        'so the native addon was not built; evtstore-rs throws NATIVE_MISSING when first used. ' +
        'Install Rust from https://rustup.rs, then run `npm rebuild evtstore-rs` ' +
        '(pnpm: `pnpm approve-builds`, then `pnpm rebuild evtstore-rs`).'
    )
    return
  }
  buildFromSource()
  if (!addonLoads()) throw new Error(`the addon built from source at ${ADDON} does not load`)
}

try {
  main()
} catch (e) {
  warn(`building the native addon from source failed: ${e instanceof Error ? e.message : e}`)
  process.exit(1)
}
