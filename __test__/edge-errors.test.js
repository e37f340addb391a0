'use strict'
// The errors a new user meets first say what happened and what to do: a
// missing native addon (no prebuilt binary for the platform, none built), and
// a knex client that no engine serves.

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..')

describe('errors at the edges', () => {
  it('a missing addon is NATIVE_MISSING naming the platform, the build command (npx, pnpm exec) and Rust', () => {
    // a copy of the package without native/ and without its platform package
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evtstore-rs-no-addon-'))
    try {
      for (const entry of ['index.js', 'lib', 'provider', 'package.json']) {
        fs.cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true })
      }
      const script =
        "const { createProvider } = require('./provider/sqlite');" +
        "try { createProvider({ file: ':memory:' }); console.log('no error') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }"
      const run = spawnSync(process.execPath, ['-e', script], { cwd: dir, encoding: 'utf8' })
      assert.equal(run.status, 0, run.stderr)
      const err = JSON.parse(run.stdout.trim())
      assert.equal(err.code, 'NATIVE_MISSING')
      for (const needle of [`${process.platform}-${process.arch}`, 'npx evtstore-rs-build', 'pnpm exec evtstore-rs-build', 'rustup.rs']) {
        assert.ok(err.message.includes(needle), `${needle} missing from: ${err.message}`)
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('knex with a client that is not supported names the supported clients and every provider path of this package', async () => {
    const knex = require('knex')({ client: 'cockroachdb', connection: 'postgres://u@127.0.0.1:1/db' })
    try {
      const { createProvider } = require('../provider/knex')
      let err = null
      try {
        createProvider({ events: () => knex('events'), bookmarks: () => knex('bookmarks') })
      } catch (e) {
        err = /** @type {any} */ (e)
      }
      assert.equal(err && err.code, 'NOT_SUPPORTED')
      assert.match(err.message, /"cockroachdb" is not supported: use one of sqlite3, better-sqlite3, pg \(or postgres, postgresql\), mysql, mysql2/)
      const providers = fs
        .readdirSync(path.join(ROOT, 'provider'))
        .filter((f) => f.endsWith('.js') && !['util.js', 'error.js', 'knex.js'].includes(f))
        .map((f) => `evtstore/provider/${f.slice(0, -3)}`)
      assert.ok(providers.length >= 8)
      for (const p of providers) assert.ok(err.message.includes(p), `${p} missing from: ${err.message}`)
    } finally {
      await knex.destroy()
    }
  })
})
