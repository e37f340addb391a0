'use strict'
// How the package finds its native addon once installed: the platform
// packages (npm/<platform>/, the napi-rs layout) agree with package.json, the
// loader names the package of each platform as the napi CLI does, and in a
// user's node_modules without a usable binary the loader and the build
// command (npx evtstore-rs-build) say what was looked for and what to do. The install through a real
// registry is scripts/install-test.sh.

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const pkg = require('../package.json')
const { platformName, prebuiltPlatforms, candidates } = require('../lib/native')

/** Node's names for the machine a napi-rs platform name stands for. */
const MACHINES = {
  'linux-x64-gnu': { os: 'linux', cpu: 'x64', libc: 'glibc' },
  'linux-x64-musl': { os: 'linux', cpu: 'x64', libc: 'musl' },
  'linux-arm64-gnu': { os: 'linux', cpu: 'arm64', libc: 'glibc' },
  'darwin-x64': { os: 'darwin', cpu: 'x64' },
  'darwin-arm64': { os: 'darwin', cpu: 'arm64' },
  'win32-x64-msvc': { os: 'win32', cpu: 'x64' },
}

/**
 * A copy of the published files in <tmp>/node_modules/evtstore-rs, without native/.
 * @returns {{ project: string, installed: string }}
 */
function installedCopy() {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'evtstore-rs-installed-'))
  const installed = path.join(project, 'node_modules', 'evtstore-rs')
  for (const entry of ['index.js', 'lib', 'provider', 'package.json', 'scripts/build-from-source.js']) {
    fs.cpSync(path.join(ROOT, entry), path.join(installed, entry), { recursive: true })
  }
  return { project, installed }
}

/** PATH without the folders that hold cargo or rustc. */
function pathWithoutRust() {
  return (process.env.PATH || '')
    .split(path.delimiter)
    .filter((dir) => !['cargo', 'rustc'].some((bin) => fs.existsSync(path.join(dir, bin))))
    .join(path.delimiter)
}

describe('platform packages', () => {
  it('package.json lists one optional dependency per napi target, at exactly its own version', () => {
    assert.deepEqual(prebuiltPlatforms().sort(), Object.keys(MACHINES).sort())
    assert.equal(pkg.napi.targets.length, Object.keys(MACHINES).length)
    for (const version of Object.values(pkg.optionalDependencies)) assert.equal(version, pkg.version)
    assert.equal(pkg.dependencies, undefined, 'the published package has no runtime dependencies')
    assert.ok(pkg.devDependencies['@napi-rs/cli'])
  })

  it('installing runs no script of the package (npm 11.16+ would warn, npm 12 and pnpm 10 would skip it)', () => {
    for (const hook of ['preinstall', 'install', 'postinstall']) assert.equal(pkg.scripts[hook], undefined, hook)
    assert.equal(fs.existsSync(path.join(ROOT, 'binding.gyp')), false)
    assert.equal(pkg.bin['evtstore-rs-build'], 'scripts/build-from-source.js')
    assert.ok(pkg.files.includes(pkg.bin['evtstore-rs-build']))
  })

  it('each npm/<platform>/package.json is that platform\'s package: name, version, os/cpu/libc, the .node file as main', () => {
    assert.deepEqual(fs.readdirSync(path.join(ROOT, 'npm')).sort(), Object.keys(MACHINES).sort())
    for (const [platform, machine] of Object.entries(MACHINES)) {
      const sub = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', platform, 'package.json'), 'utf8'))
      assert.equal(sub.name, `evtstore-rs-${platform}`)
      assert.equal(sub.version, pkg.version)
      assert.deepEqual(sub.os, [machine.os])
      assert.deepEqual(sub.cpu, [machine.cpu])
      assert.deepEqual(sub.libc, machine.libc ? [machine.libc] : undefined)
      assert.equal(sub.main, `evtstore-rs.${platform}.node`)
      assert.deepEqual(sub.files, [sub.main])
    }
  })

  it('the loader asks for the package of the running platform, musl and glibc apart', () => {
    assert.equal(platformName({ platform: 'linux', arch: 'x64', libc: 'musl' }), 'linux-x64-musl')
    assert.equal(platformName({ platform: 'linux', arch: 'arm64', libc: 'gnu' }), 'linux-arm64-gnu')
    assert.equal(platformName({ platform: 'darwin', arch: 'arm64' }), 'darwin-arm64')
    assert.equal(platformName({ platform: 'win32', arch: 'x64' }), 'win32-x64-msvc')
    assert.deepEqual(
      candidates('linux-x64-musl').map((c) => c.request),
      [path.join(ROOT, 'native', 'evtstore-rs.node'), 'evtstore-rs-linux-x64-musl']
    )
    if (process.platform === 'linux') {
      const glibc = /** @type {any} */ (process.report.getReport()).header.glibcVersionRuntime
      assert.equal(platformName(), `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`)
    }
  })
})

describe('an installed package without a usable binary', () => {
  it('NATIVE_MISSING names the platform, the package and the file looked for, and both ways out', () => {
    const { project, installed } = installedCopy()
    try {
      const run = spawnSync(process.execPath, ['-e', "require('evtstore-rs/lib/native.js').loadNative()"], { cwd: project, encoding: 'utf8' })
      assert.notEqual(run.status, 0)
      for (const needle of [
        'NATIVE_MISSING',
        `evtstore-rs-${platformName()} (not installed)`,
        `${path.join(installed, 'native', 'evtstore-rs.node')} (not installed)`,
        '--omit=optional',
        'rustup.rs',
        'npx evtstore-rs-build',
        'pnpm exec evtstore-rs-build',
      ]) {
        assert.ok(run.stderr.includes(needle), `${needle} missing from: ${run.stderr}`)
      }
    } finally {
      fs.rmSync(project, { recursive: true, force: true })
    }
  })

  it('a platform package whose binary does not load is named with the reason', () => {
    const { project } = installedCopy()
    try {
      const sub = path.join(project, 'node_modules', `evtstore-rs-${platformName()}`)
      fs.mkdirSync(sub)
      fs.writeFileSync(path.join(sub, 'package.json'), JSON.stringify({ name: path.basename(sub), main: 'x.node' }))
      fs.writeFileSync(path.join(sub, 'x.node'), 'not a shared library')
      const run = spawnSync(process.execPath, ['-e', "require('evtstore-rs/lib/native.js').loadNative()"], { cwd: project, encoding: 'utf8' })
      assert.notEqual(run.status, 0)
      assert.match(run.stderr, new RegExp(`the prebuilt package evtstore-rs-${platformName()} \\(could not be loaded: `))
    } finally {
      fs.rmSync(project, { recursive: true, force: true })
    }
  })

  it('npx evtstore-rs-build without cargo on PATH fails saying to install Rust, and builds nothing', () => {
    const { project, installed } = installedCopy()
    try {
      const run = spawnSync(process.execPath, [path.join(installed, 'scripts', 'build-from-source.js')], {
        cwd: project,
        env: { ...process.env, PATH: pathWithoutRust() },
        encoding: 'utf8',
      })
      assert.equal(run.status, 1, run.stdout)
      assert.match(run.stderr, new RegExp(`building for ${platformName()} needs Rust, and cargo is not on PATH: install it from https://rustup.rs`))
      assert.equal(fs.existsSync(path.join(installed, 'native')), false)
    } finally {
      fs.rmSync(project, { recursive: true, force: true })
    }
  })

  it('npx evtstore-rs-build does nothing where a binary loads', () => {
    const run = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-from-source.js')], { encoding: 'utf8' })
    assert.equal(run.status, 0, run.stderr)
    assert.match(run.stdout, /already loads on this machine; nothing to build/)
  })
})
