'use strict'
// The cross-process checks every server engine's test file runs with its own
// parameters (postgres, mysql, mongo and neo4j .test.js):
//
// - writersAgainstHandler: writer processes (fixtures/server-writer.js) issue
//   commands while a started handler in another process
//   (fixtures/server-handler.js) records what it is given: every event is
//   stored and handled exactly once, in position order.
// - wakeUpsFromAnotherProcess: how soon a started handler in this process
//   handles what another process (fixtures/server-append.js) appends.
//
// A process opens the package's provider on `store`: { form, url, events?,
// bookmarks? }, a form of fixtures/server-provider.js ('postgres-url',
// 'knex-mysql2', ...) and the table, collection or label names (default
// 'events' and 'bookmarks').
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { deferred, withTimeout, delay, makeDomain, runNode } = require('./helpers')

const fixture = (name) => path.join(__dirname, 'fixtures', name)

/** @typedef {{ form: string, url: string, events?: string, bookmarks?: string }} Store */

/**
 * The fixture's arguments that name the provider.
 * @param {Store} store
 */
function providerArgs(store) {
  return [store.form, store.url, store.events || 'events', store.bookmarks || 'bookmarks']
}

/** The events server-writer.js appends for `commands` commands: 2 for every third one, else 1. */
function eventsPerWriter(commands) {
  let events = 0
  for (let i = 0; i < commands; i++) events += i % 3 === 0 ? 2 : 1
  return events
}

/**
 * Starts a fixture process (fixtures/<name>) and resolves once it printed
 * "started"; `finished` resolves with its exit code, `result()` is its last
 * JSON line.
 * @param {string} name
 * @param {string[]} args
 */
async function startFixture(name, args) {
  const child = spawn(process.execPath, [fixture(name), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stderr.on('data', (d) => (err += d))
  const started = deferred()
  const finished = deferred()
  child.stdout.on('data', (d) => {
    out += d
    if (out.includes('started\n')) started.resolve()
  })
  child.on('close', (code) => finished.resolve(code))
  const handler = {
    child,
    pid: /** @type {number} */ (child.pid),
    /** @type {Promise<number | null>} */
    finished: finished.promise,
    stderr: () => err,
    result: () => JSON.parse(out.trim().split('\n').pop()),
  }
  const endedEarly = finished.promise.then(() => Promise.reject(new Error(`the ${name} process ended:\n${err}`)))
  try {
    await withTimeout(Promise.race([started.promise, endedEarly]), 20000, `the ${name} process start`)
  } catch (e) {
    child.kill('SIGKILL')
    throw e
  }
  return handler
}

/** @param {string[]} args server-handler.js's */
const startHandlerProcess = (args) => startFixture('server-handler.js', args)

/**
 * One writer process per entry of `writers.forms` (`commands` commands each,
 * `inFlight` at a time, ended within `timeoutMs`), each on `store` through
 * that form, against a handler started on `store` in another process
 * (pollInterval 1000 ms).
 * Checks that the writers appended what they were to, that the store holds
 * exactly those events (`storedPositions`: their positions in order), and
 * that the handler was given each of them once, in that order, and ended
 * with its bookmark on the last. `checkStore` adds the engine's own checks;
 * what it returns is added to the diagnostic line.
 * @param {import('node:test').TestContext} t
 * @param {{
 *   store: Store,
 *   writers: { forms: string[], commands: number, inFlight: number, timeoutMs: number },
 *   storedPositions: () => Promise<number[]>,
 *   checkStore?: (stored: number[], expected: number) => Promise<string | void>,
 * }} opts
 */
async function writersAgainstHandler(t, opts) {
  const { store } = opts
  const { forms, commands, inFlight } = opts.writers
  const writers = forms.length
  const expected = writers * eventsPerWriter(commands)
  const handler = await startHandlerProcess([...providerArgs(store), String(expected), '1000'])
  try {
    const started = Date.now()
    const results = await Promise.all(
      forms.map((form, w) =>
        runNode(fixture('server-writer.js'), [...providerArgs({ ...store, form }), String(w), String(commands), String(inFlight)], {
          timeoutMs: opts.writers.timeoutMs,
        })
      )
    )
    const writeMs = Date.now() - started
    for (const r of results) assert.equal(r.code, 0, `a writer failed:\n${r.stderr}`)
    const stats = results.map((r) => JSON.parse(r.stdout.trim().split('\n').pop()))
    assert.equal(
      stats.reduce((n, s) => n + s.events, 0),
      expected
    )

    const code = await withTimeout(handler.finished, 30000, 'the handler process to see every event')
    assert.equal(code, 0, `the handler process failed:\n${handler.stderr()}`)
    const handledMs = Date.now() - started
    const { positions, bookmark } = handler.result()

    const stored = await opts.storedPositions()
    assert.equal(stored.length, expected, 'the store holds every event once')
    assert.equal(positions.length, expected, 'the handler saw each event once')
    for (let i = 1; i < positions.length; i++) {
      assert.ok(positions[i] > positions[i - 1], `position ${positions[i]} after ${positions[i - 1]} (index ${i})`)
    }
    assert.deepEqual(positions, stored, 'the handler skipped, repeated or reordered events')
    assert.equal(bookmark, stored[stored.length - 1])
    const more = opts.checkStore ? await opts.checkStore(stored, expected) : undefined
    const conflicts = stats.reduce((n, s) => n + s.conflicts, 0)
    t.diagnostic(
      `${writers} writers x ${commands} commands (${inFlight} in flight each): ${expected} events, ` +
        `${conflicts} version conflicts retried, written in ${writeMs} ms ` +
        `(${stats.map((s) => s.ms).join('/')} ms per writer), all handled ${handledMs} ms after the writers started` +
        (more ? `; ${more}` : '')
    )
  } finally {
    // a failed check leaves no process behind on a database about to be dropped
    if (handler.child.exitCode === null && handler.child.signalCode === null) handler.child.kill('SIGKILL')
  }
}

/**
 * A handler started on `provider` (pollInterval `pollInterval`) and `count`
 * commands, `gapMs` apart, in another process on `store` (the same): every one is
 * handled within `allWithinMs` (default 3000), each less than `eachUnder` ms
 * after its command resolved, and, with `medianAtMost`, the median at most
 * that. `why` ends the failure messages, `note` the diagnostic line.
 * @param {import('node:test').TestContext} t
 * @param {{
 *   provider: any,
 *   store: Store,
 *   count: number,
 *   gapMs: number,
 *   pollInterval: number,
 *   allWithinMs?: number,
 *   medianAtMost?: number,
 *   eachUnder: number,
 *   why?: string,
 *   note?: string,
 * }} opts
 */
async function wakeUpsFromAnotherProcess(t, opts) {
  const { count, pollInterval } = opts
  const handler = makeDomain(opts.provider).createHandler('cross-process', ['users'], { pollInterval })
  const handled = new Map()
  handler.handle('users', 'pinged', (id, ev) => {
    if (id === 'from-child') handled.set(ev.seq, Date.now())
  })
  handler.start()
  try {
    const args = [...providerArgs(opts.store), String(count), String(opts.gapMs)]
    const child = await runNode(fixture('server-append.js'), args, { timeoutMs: 30000 })
    assert.equal(child.code, 0, `child failed:\n${child.stderr}`)
    const appends = child.stdout.trim().split('\n').map((l) => JSON.parse(l))
    assert.equal(appends.length, count)
    await withTimeout(
      (async () => {
        while (handled.size < count) await delay(5)
      })(),
      opts.allWithinMs || 3000,
      'every event from the other process'
    )
    const delays = appends.map((a) => handled.get(a.seq) - a.after)
    const fromStart = appends.map((a) => handled.get(a.seq) - a.before)
    const sorted = [...delays].sort((x, y) => x - y)
    const median = sorted[Math.floor(sorted.length / 2)]
    const why = opts.why ? `: ${opts.why}` : ''
    t.diagnostic(
      `handled ${sorted.join(', ')} ms after the other process's append resolved (median ${median} ms; ` +
        `from the start of the command: ${[...fromStart].sort((x, y) => x - y).join(', ')} ms; pollInterval ${pollInterval} ms` +
        (opts.note ? `; ${opts.note}` : '') +
        ')'
    )
    if (opts.medianAtMost !== undefined) assert.ok(median <= opts.medianAtMost, `median wake-up ${median} ms${why}`)
    for (const d of delays) assert.ok(d < opts.eachUnder, `handled ${d} ms after the append${why}`)
  } finally {
    await handler.stop()
  }
}

module.exports = { writersAgainstHandler, wakeUpsFromAnotherProcess, startFixture, providerArgs }
