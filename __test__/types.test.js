'use strict'
// The typings are the product: the type tests in __test__/types must compile
// under strict tsc, and each `// @ts-expect-error` line there must be an error
// (tsc fails on an unused directive).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const ROOT = path.resolve(__dirname, '..')

/** Runs tsc -p on a project folder; asserts exit code 0 (showing the errors) and returns the files it used. */
function compile(project) {
  const tsc = require.resolve('typescript/bin/tsc')
  const res = spawnSync(process.execPath, [tsc, '-p', project, '--listFiles', '--pretty', 'false'], {
    encoding: 'utf8',
    cwd: ROOT,
  })
  const out = `${res.stdout}\n${res.stderr}`
  const lines = out.split('\n').map((l) => l.trim())
  const errors = lines.filter((l) => /error TS\d+/.test(l))
  assert.equal(res.status, 0, `tsc -p ${project} exited with ${res.status}:\n${errors.join('\n') || out}`)
  return lines.filter((l) => l.endsWith('.ts'))
}

test('the type tests compile with strict tsc against the package typings', { timeout: 120000 }, () => {
  const files = compile(path.join(__dirname, 'types'))

  // the modules resolved to this package, never to the original evtstore
  assert.ok(files.includes(path.join(ROOT, 'index.d.ts')), 'index.d.ts of the package was not used')
  for (const p of ['memory', 'sqlite', 'knex', 'postgres', 'pg']) {
    assert.ok(
      files.includes(path.join(ROOT, 'provider', `${p}.d.ts`)),
      `provider/${p}.d.ts of the package was not used`
    )
  }
  const original = files.filter((f) => f.includes(`${path.sep}node_modules${path.sep}evtstore${path.sep}`))
  assert.deepEqual(original, [], 'some imports resolved to the original evtstore')
})

test('imports by package name resolve through package.json "exports" under moduleResolution node16', { timeout: 120000 }, () => {
  const files = compile(path.join(__dirname, 'types', 'node16'))
  for (const f of [
    'index.d.ts',
    'provider/memory.d.ts',
    'provider/sqlite.d.ts',
    'provider/knex.d.ts',
    'provider/postgres.d.ts',
    'provider/pg.d.ts',
  ]) {
    assert.ok(files.includes(path.join(ROOT, f)), `${f} was not used`)
  }
})
