'use strict'
// The native addon on its own, given what the facade would never pass: every
// failure must reach JavaScript as an Error with a stable `code`, never as a
// crash of the process (a panic in the addon would abort Node). The hostile
// calls run in a child process, so a crash shows as its exit status.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const FIXTURE = path.join(__dirname, 'fixtures', 'native-hostile.js')

describe('native addon', () => {
  it('hostile arguments to every native class reject or throw Errors with a code, and the process lives on', () => {
    let out
    try {
      out = execFileSync(process.execPath, [FIXTURE], { encoding: 'utf8', timeout: 60_000 })
    } catch (err) {
      const e = /** @type {any} */ (err)
      assert.fail(
        `the child process ended with status ${e.status} signal ${e.signal}: a crash in the addon?\n${e.stdout}\n${e.stderr}`
      )
    }
    const report = JSON.parse(out.trim().split('\n').pop() || '{}')
    assert.ok(report.calls >= 30, `only ${report.calls} hostile calls ran`)
    assert.deepEqual(report.problems, [])
    // the addon still works after all of them
    assert.equal(report.afterwards, 'ok')
  })
})
