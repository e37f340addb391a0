'use strict'
// lib/ and provider/ are plain JavaScript checked by the compiler (checkJs,
// strict) against the typings napi generates for the addon: a native method
// renamed, an option misspelt or a read of the wrong shape fails here.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const ROOT = path.resolve(__dirname, '..')
const NATIVE_TYPES = path.join(ROOT, 'native', 'native.d.ts')

test('lib/ and provider/ type-check (checkJs, strict) against the generated native.d.ts', { timeout: 120000 }, () => {
  assert.ok(fs.existsSync(NATIVE_TYPES), `${NATIVE_TYPES} is missing: npm run build writes it`)
  const tsc = require.resolve('typescript/bin/tsc')
  const res = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'lib'), '--listFiles', '--pretty', 'false'], {
    encoding: 'utf8',
    cwd: ROOT,
  })
  const out = `${res.stdout}\n${res.stderr}`
  const lines = out.split('\n').map((l) => l.trim())
  const errors = lines.filter((l) => /error TS\d+/.test(l))
  assert.equal(res.status, 0, `tsc -p lib exited with ${res.status}:\n${errors.join('\n') || out}`)
  // the boundary was checked: the generated typings were used, and the engine adapters were among the files
  assert.ok(lines.includes(NATIVE_TYPES), 'native/native.d.ts was not used')
  for (const f of ['lib/native-provider.js', 'lib/engines/shared-stores.js', 'lib/engines/postgres/index.js', 'provider/pg.js']) {
    assert.ok(lines.includes(path.join(ROOT, f)), `${f} was not checked`)
  }
})
