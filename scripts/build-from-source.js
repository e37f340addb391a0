#!/usr/bin/env node
'use strict'
// `npx evtstore-rs-build` (the package's bin): builds the native addon from
// the Rust source the package ships, for a platform without a prebuilt
// binary, into native/ of the installed package, where lib/native.js looks
// first. cargo builds in a temporary target folder, deleted afterwards, so
// node_modules keeps only the .node file. When a binary already loads it does
// nothing, unless given --force.
//
// This is a command, not an install script: npm (11.16 and later) warns about
// every dependency with an install script and npm 12 and pnpm 10 skip them
// unless the project allows each one, so an install script would cost every
// user a warning or an approval, for the few who need a build.
// A CARGO_TARGET_DIR of the caller's is used as it is, and kept.

const fs = require('fs')
const os = require('os')
const path = require('path')
const { spawnSync } = require('child_process')

const PACKAGE_DIR = path.join(__dirname, '..')
const { ADDON, platformName } = require('../lib/native')

/** Whether an addon loads, asked of a fresh process so that a new build is seen. */
function addonLoads() {
  const check = "require('./lib/native').loadNative()"
  return spawnSync(process.execPath, ['-e', check], { cwd: PACKAGE_DIR, stdio: 'ignore' }).status === 0
}

function cargoWorks() {
  const run = spawnSync('cargo', ['--version'], { stdio: 'ignore' })
  return !run.error && run.status === 0
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

function main() {
  const force = process.argv.includes('--force')
  if (!force && addonLoads()) {
    console.log('evtstore-rs: the native addon already loads on this machine; nothing to build (--force builds anyway)')
    return
  }
  if (!cargoWorks()) {
    throw new Error(
      `building for ${platformName()} needs Rust, and cargo is not on PATH: install it from https://rustup.rs, then run npx evtstore-rs-build again`
    )
  }
  const ownTarget = !process.env.CARGO_TARGET_DIR
  const targetDir = process.env.CARGO_TARGET_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'evtstore-rs-build-'))
  console.log(`evtstore-rs: building the native addon from source for ${platformName()} (a few minutes)`)
  try {
    const lib = cargoBuild(targetDir)
    fs.mkdirSync(path.dirname(ADDON), { recursive: true })
    fs.copyFileSync(lib, ADDON)
  } finally {
    if (ownTarget) fs.rmSync(targetDir, { recursive: true, force: true })
  }
  if (!addonLoads()) throw new Error(`the addon built at ${ADDON} does not load`)
  console.log(`evtstore-rs: built ${ADDON}`)
}

try {
  main()
} catch (e) {
  console.error(`evtstore-rs: ${e instanceof Error ? e.message : e}`)
  process.exit(1)
}
