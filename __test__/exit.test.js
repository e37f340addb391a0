'use strict'
// Nothing the package runs keeps Node alive by itself: a program that created
// providers, domains and handlers but started none exits on its own, and so
// does one that stopped its handler; a started handler keeps it alive.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { tempDir, removeDir } = require('./providers')
const { runNode } = require('./helpers')
const { describePg, createDatabase } = require('./pg-server')

const script = path.join(__dirname, 'fixtures', 'exit-scenario.js')
const EXIT_BOUND_MS = 8000 // "by itself within a few seconds", node start-up included
const T = { timeout: 30000 }

/**
 * The three scenarios for one kind of provider. `env()` gives the child's
 * extra environment for one test (PostgreSQL: a fresh database).
 */
function scenarios(kind, env = async () => ({})) {
  for (const scenario of ['idle', 'stopped']) {
    const what =
      scenario === 'idle'
        ? 'providers, domains and handlers that were never started'
        : 'a handler that was started and then stopped'
    it(`[${kind}] a program with ${what} exits by itself`, T, async (t) => {
      const dir = tempDir()
      t.after(() => removeDir(dir))
      const res = await runNode(script, [kind, scenario, dir], { timeoutMs: EXIT_BOUND_MS, env: await env(t) })
      assert.equal(res.code, 0, `exit code ${res.code}:\n${res.stderr}`)
      assert.match(res.stdout, /done/)
      t.diagnostic(`exited after ${res.ms} ms`)
    })
  }

  it(`[${kind}] a program with a started handler that is never stopped stays alive`, T, async (t) => {
    const dir = tempDir()
    t.after(() => removeDir(dir))
    const child = spawn(process.execPath, [script, kind, 'forever', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(await env(t)) },
    })
    let stdout = ''
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
    try {
      const started = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`never started:\n${stderr}`)), 10000)
        child.stdout.on('data', (d) => {
          stdout += d
          if (/started/.test(stdout)) {
            clearTimeout(timer)
            resolve(true)
          }
        })
        exited.then(({ code }) => {
          clearTimeout(timer)
          reject(new Error(`exited with ${code} before it started:\n${stderr}`))
        })
      })
      assert.ok(started)
      const outcome = await Promise.race([
        exited.then((r) => ({ exited: true, ...r })),
        new Promise((resolve) => setTimeout(() => resolve({ exited: false }), 1500)),
      ])
      assert.equal(outcome.exited, false, `the process ended by itself: ${JSON.stringify(outcome)}\n${stderr}`)
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    }
  })
}

describe('process exit', { concurrency: true }, () => {
  for (const kind of ['memory', 'sqlite', 'knex']) scenarios(kind)
})

describePg('process exit [postgres]', { concurrency: true }, () => {
  scenarios('postgres', async (t) => {
    const db = await createDatabase()
    t.after(() => db.drop())
    return { EVTSTORE_TEST_DB_URL: db.url }
  })
})
