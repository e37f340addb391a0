'use strict'
// Faults (issue 5, "Reliability and security", item 3): what a user sees and
// what is stored when the world misbehaves.
//
// 1. PostgreSQL and MariaDB stopped and restarted while a handler runs and commands are
//    issued (a throw-away cluster of its own, throwaway-server.js: the shared
//    server is never stopped).
// 2. Handler callbacks that throw, started handlers: onError gets the event
//    that threw (runOnce is covered by behaviour.test.js).
// 2b. A read or bookmark write of a started handler that fails with a
//    retryable error is tried again at the next poll, a callback that throws
//    only after retryDelay (faults injected into a provider wrapper).
// 3. A process killed with SIGKILL in the middle of a catch-up (SQLite file
//    and PostgreSQL): the next handler on the bookmark re-delivers at most
//    the batch that was in flight.
// 4. An SQLite file locked by another process: DATABASE_BUSY after the busy
//    timeout, or a wait and success when the lock goes within it.
//
// The PostgreSQL parts need EVTSTORE_TEST_PG_URL (scripts/postgres.sh start);
// without it they are skipped with the reason, under CI=true they fail.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { root, provider: providerModule } = require('./pkg')
const { makeDomain, deferred, withTimeout, delay, caught } = require('./helpers')
const { factories, tempDir, removeDir } = require('./providers')
const { createJsProvider } = require('./js-provider')
const { describePg, createDatabase, query } = require('./pg-server')
const { createCluster } = require('./throwaway-server')
const { describeMysql, query: mysqlQuery } = require('./mysql-server')

const FIXTURES = path.join(__dirname, 'fixtures')
const CONNECTION_CODES = ['CANNOT_CONNECT', 'CONNECTION_LOST']

/** Polls `check` every 20 ms until it returns true; rejects after `ms`. */
async function waitFor(check, ms, what) {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`)
    await delay(20)
  }
}

/** A child process on a fixture, with its output lines and its exit. */
function child(script, args, { stdin = 'ignore' } = {}) {
  const proc = spawn(process.execPath, [path.join(FIXTURES, script), ...args], {
    stdio: [stdin, 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  const waiting = []
  proc.stdout.on('data', (d) => {
    stdout += d
    for (const w of [...waiting]) {
      if (stdout.split('\n').includes(w.line)) {
        waiting.splice(waiting.indexOf(w), 1)
        w.resolve()
      }
    }
  })
  proc.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal })))
  return {
    proc,
    exited,
    output: () => ({ stdout, stderr }),
    /** Resolves when the child printed `line`; rejects when it exits first. */
    line(line) {
      if (stdout.split('\n').includes(line)) return Promise.resolve()
      const d = deferred()
      waiting.push({ line, resolve: d.resolve })
      exited.then(() => d.reject(new Error(`${script} exited before printing "${line}"\n${stdout}\n${stderr}`)))
      return d.promise
    },
    kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    },
  }
}

/** Lines of numbers in a file (a partial last line, if any, is ignored). */
function readPositions(file) {
  if (!fs.existsSync(file)) return []
  const text = fs.readFileSync(file, 'utf8')
  const lines = text.split('\n')
  lines.pop() // after the last newline: '' or a line the kill cut short
  return lines.map(Number)
}

// ---------------------------------------------------------------------------
// 1. PostgreSQL stopped and restarted
// ---------------------------------------------------------------------------

/** The events table of a throw-away server, in position order. */
async function storedRows(kind, url) {
  const sql = 'SELECT position, aggregate_id, version, event FROM events ORDER BY position'
  return kind === 'mysql' ? mysqlQuery(url, sql) : (await query(url, sql)).rows
}

const RESTART =
  'while the server is down commands fail with a retryable connection error and store nothing; afterwards every command succeeds, versions stay dense and the started handler resumes with no event skipped'

/**
 * The server of `kind` ('postgres' or 'mysql') stopped twice (a clean
 * shutdown, then a crash) and started again under four writers and a
 * started handler.
 * @param {any} t
 * @param {{ url: string, port: number, stop(mode?: string): Promise<void>, start(): Promise<void> }} server
 * @param {'postgres' | 'mysql'} kind
 */
async function restartScenario(t, server, kind) {
  const url = server.url
  const store = providerModule(kind === 'mysql' ? 'mysql' : 'postgres')
  await store.migrate({ url })
  const handlerErrors = []
  const provider = store.createProvider({
    url,
    onError: (err, _streams, bookmark, ev) => handlerErrors.push({ err, bookmark, ev, at: Date.now() }),
  })
  let handler
  t.after(async () => {
    if (handler) await handler.stop()
    await provider.close()
  })
  await provider.ready
  const { userCmd, createHandler } = makeDomain(provider)

  const BATCH = 5
  handler = createHandler('through-restart', ['users'], {
    batchSize: BATCH,
    pollInterval: 100,
    retryDelay: 250,
  })
  /** every position the handler was given, in the order given */
  const delivered = []
  const deliveredAt = []
  handler.handle('users', 'loggedIn', async (_id, _ev, meta) => {
    delivered.push(meta.position)
    deliveredAt.push(Date.now())
    if (delivered.length % 3 === 0) await delay(1)
  })
  handler.start()

  // four writers, each on aggregates of its own (no version conflicts),
  // each command appending three events tagged with the command
  const outcomes = []
  let writing = true
  async function writer(w) {
    for (let n = 0; writing; n++) {
      const aggregateId = `agg-${w}-${n % 3}`
      const tag = `w${w}-c${n}`
      const started = Date.now()
      try {
        const agg = await userCmd.emit(aggregateId, {
          events: [0, 1, 2].map((i) => ({ type: 'loggedIn', tag, i })),
        })
        outcomes.push({ tag, aggregateId, ok: true, version: agg.version, started, ended: Date.now() })
        await delay(5)
      } catch (err) {
        outcomes.push({ tag, aggregateId, ok: false, err, started, ended: Date.now() })
        await delay(50)
      }
    }
  }
  const writers = [0, 1, 2, 3].map(writer)
  const okSince = (ms) => outcomes.filter((o) => o.ok && o.started >= ms)

  // two outages: a clean shutdown, then a crash (pg_ctl -m immediate)
  const outages = []
  try {
    await waitFor(() => okSince(0).length >= 20, 20000, '20 commands before the first stop')
    await waitFor(() => delivered.length >= 30, 20000, 'the handler handling events before the first stop')
    for (const mode of ['fast', 'immediate']) {
      const outage = { mode }
      outages.push(outage)
      if (mode !== 'fast') {
        const since = outages[outages.length - 2].upAt
        await waitFor(() => okSince(since).length >= 20, 20000, `20 commands before the ${mode} stop`)
      }
      outage.stopBegan = Date.now()
      await server.stop(mode)
      outage.downAt = Date.now()
      await waitFor(
        () => outcomes.filter((o) => o.started >= outage.downAt).length >= 8 && Date.now() - outage.downAt >= 1500,
        20000,
        `commands while the server is down (${mode})`
      )
      outage.startBegan = Date.now()
      await server.start()
      outage.upAt = Date.now()
      await waitFor(
        () =>
          [0, 1, 2, 3].every(
            (w) => okSince(outage.upAt).filter((o) => o.tag.startsWith(`w${w}-`)).length >= 3
          ),
        30000,
        `three successful commands per writer after the ${mode} restart`
      )
    }
  } finally {
    writing = false
    await Promise.all(writers)
  }

  // what the table holds
  const rows = await storedRows(kind, url)
  const stored = rows.map((r) => ({
    position: Number(r.position),
    aggregateId: r.aggregate_id,
    version: Number(r.version),
    event: JSON.parse(r.event),
  }))
  const lastPosition = stored[stored.length - 1].position
  await waitFor(
    () => delivered.length > 0 && Math.max(...delivered) >= lastPosition,
    20000,
    `the handler reaching position ${lastPosition}`
  )
  await handler.stop()

  const failures = outcomes.filter((o) => !o.ok)
  const successes = outcomes.filter((o) => o.ok)
  const codes = {}
  for (const f of failures) codes[f.err && f.err.code] = (codes[f.err && f.err.code] || 0) + 1
  t.diagnostic(`${successes.length} commands stored, ${failures.length} failed (${JSON.stringify(codes)})`)
  const whileDown = []
  const afterRestart = []
  outages.forEach((o, i) => {
    const next = outages[i + 1]
    const down = outcomes.filter((c) => c.started >= o.downAt && c.ended <= o.startBegan)
    whileDown.push(...down)
    afterRestart.push(...outcomes.filter((c) => c.started >= o.upAt && (!next || c.ended < next.stopBegan)))
    const failed = failures.filter((c) => c.ended >= o.stopBegan && (!next || c.ended < next.stopBegan))
    const firstFailure = Math.min(...failed.map((c) => c.ended))
    const firstOk = Math.min(...okSince(o.startBegan).map((c) => c.ended))
    const firstDelivery = deliveredAt.find((at) => at >= o.startBegan)
    t.diagnostic(
      `stop ${o.mode}: the stop took ${o.downAt - o.stopBegan} ms, down for ${o.startBegan - o.downAt} ms, ` +
        `the start took ${o.upAt - o.startBegan} ms; ${failed.length} commands failed, from ` +
        `${firstFailure - o.stopBegan} ms after the stop began (${firstOk - firstFailure} ms of failures), ` +
        `${down.length} issued while down, ${down.filter((c) => c.ok).length} of them succeeded; ` +
        `after the start began: first successful command ${firstOk - o.startBegan} ms, ` +
        `the handler's first event ${firstDelivery - o.startBegan} ms (retryDelay 250 ms)`
    )
  })
  const samples = new Map()
  for (const f of failures) {
    const reason = `${f.err.code}: ${String(f.err.message).split('\n')[0]}`
    samples.set(reason, (samples.get(reason) || 0) + 1)
  }
  for (const [reason, n] of samples) t.diagnostic(`${n} x ${reason}`)
  if (failures.length) t.diagnostic(`the full message: ${failures[failures.length - 1].err.message}`)

  // the errors a user sees
  assert.ok(whileDown.length >= 16, `only ${whileDown.length} commands were issued while the server was down`)
  assert.deepEqual(
    whileDown.filter((c) => c.ok).map((c) => c.tag),
    [],
    'commands succeeded while the server was down'
  )
  for (const f of failures) {
    assert.ok(f.err instanceof Error, `a failure that is no Error: ${f.err}`)
    assert.ok(!(f.err instanceof root().VersionError), `a VersionError while the server was down: ${f.err.stack}`)
    assert.ok(CONNECTION_CODES.includes(f.err.code), `unexpected code ${f.err.code}: ${f.err.message}`)
    assert.equal(f.err.retryable, true, `${f.err.code} is not marked retryable`)
    assert.match(f.err.message, new RegExp(`127\\.0\\.0\\.1:${server.port}`))
  }
  assert.deepEqual(
    afterRestart.filter((c) => !c.ok).map((o) => `${o.err.code}: ${o.err.message}`),
    [],
    'commands issued after the server was back failed'
  )

  // nothing half-written: versions dense, each command all or nothing
  const byAggregate = new Map()
  const byTag = new Map()
  for (const ev of stored) {
    if (!byAggregate.has(ev.aggregateId)) byAggregate.set(ev.aggregateId, [])
    byAggregate.get(ev.aggregateId).push(ev.version)
    if (!byTag.has(ev.event.tag)) byTag.set(ev.event.tag, [])
    byTag.get(ev.event.tag).push(ev)
  }
  for (const [aggregateId, versions] of byAggregate) {
    const sorted = [...versions].sort((a, b) => a - b)
    assert.deepEqual(sorted, sorted.map((_, i) => i + 1), `versions of ${aggregateId} are not 1..n`)
  }
  for (const [tag, events] of byTag) {
    assert.deepEqual(
      events.map((e) => e.event.i),
      [0, 1, 2],
      `command ${tag} is stored in part: ${JSON.stringify(events)}`
    )
    const v = events[0].version
    assert.deepEqual(events.map((e) => e.version), [v, v + 1, v + 2])
  }
  for (const s of successes) {
    const events = byTag.get(s.tag)
    assert.ok(events, `successful command ${s.tag} is not stored`)
    assert.equal(events[2].version, s.version, `command ${s.tag} resolved with another version than stored`)
  }
  // a command in flight when the server stopped may have committed
  // although it failed (its connection broke before the answer): it
  // must then say so; one issued later must not be stored
  const storedButFailed = failures.filter((f) => byTag.has(f.tag))
  const inFlight = (f) => outages.some((o) => f.started < o.downAt && f.ended >= o.stopBegan)
  for (const f of storedButFailed.filter(inFlight)) {
    t.diagnostic(`in flight at a stop, failed with ${f.err.code} and yet stored: ${f.tag}`)
    assert.equal(f.err.code, 'CONNECTION_LOST', `${f.tag} is stored, but its error says ${f.err.code}: ${f.err.message}`)
    assert.match(f.err.message, /may have been stored/)
  }
  assert.deepEqual(
    storedButFailed.filter((f) => !inFlight(f)).map((f) => `${f.tag}: ${f.err.code}: ${f.err.message}`),
    [],
    'commands that failed are stored'
  )
  assert.equal(byTag.size, successes.length + storedButFailed.length)

  // the handler: every event, in order; at most one batch twice
  const positions = stored.map((e) => e.position)
  const firstTime = []
  const seen = new Set()
  let twice = 0
  for (const p of delivered) {
    if (seen.has(p)) twice++
    else {
      seen.add(p)
      firstTime.push(p)
    }
  }
  t.diagnostic(
    `handler: ${delivered.length} deliveries of ${positions.length} events (${twice} twice), ` +
      `${handlerErrors.length} errors reported to onError (${[...new Set(handlerErrors.map((e) => e.err && e.err.code))].join(', ')})`
  )
  assert.deepEqual(firstTime, positions, 'the handler skipped an event or handled them out of order')
  assert.ok(twice <= BATCH, `${twice} events handled twice (batchSize ${BATCH})`)
  assert.ok(handlerErrors.length >= 1, 'the handler reported no error while the server was down')
  for (const { err, bookmark } of handlerErrors) {
    assert.equal(bookmark, 'through-restart')
    assert.ok(CONNECTION_CODES.includes(err && err.code), `the handler reported ${err && err.code}: ${err && err.message}`)
    assert.equal(err.retryable, true)
  }
  assert.equal(await provider.getPosition('through-restart'), lastPosition)
}

describePg('faults: PostgreSQL stopped and restarted (a throw-away cluster)', () => {
  /** @type {Awaited<ReturnType<typeof createCluster>> | undefined} */
  let cluster
  before(async () => {
    cluster = await createCluster()
  })
  after(async () => {
    if (cluster) await cluster.destroy()
  })

  it(RESTART, { timeout: 90000 }, (t) => restartScenario(t, cluster, 'postgres'))

  it('errors that retrying does not cure are not marked retryable: a wrong password, a TLS failure', async () => {
    const pg = providerModule('postgres')
    const wrong = new URL(cluster.url)
    wrong.password = 'not-the-password'
    const auth = pg.createProvider({ url: wrong.toString() })
    try {
      const err = await caught(() => auth.ready)
      assert.equal(err.code, 'AUTH_FAILED')
      assert.notEqual(err.retryable, true)
    } finally {
      await auth.close()
    }
    // the cluster's certificate is signed by a CA of its own that the system does not trust
    const tls = new URL(cluster.url)
    tls.searchParams.set('sslmode', 'verify-full')
    const untrusted = pg.createProvider({ url: tls.toString() })
    try {
      const err = await caught(() => untrusted.ready)
      assert.equal(err.code, 'CANNOT_CONNECT', err.message)
      assert.match(err.message, /TLS/)
      assert.notEqual(err.retryable, true)
    } finally {
      await untrusted.close()
    }
  })
})

/**
 * A TCP proxy to the PostgreSQL server of `url` that cuts one connection after
 * the commit: once armed, the connection whose client sends `marker` (in the
 * appended event's JSON) gets nothing more from the server; 300 ms later (the
 * server has long committed) both sides are closed. With `refuse`, the proxy
 * stops listening at that moment, so the client's retry is refused, as when
 * the server went away.
 * @param {string} url
 */
async function cuttingProxy(url, { refuse }) {
  const net = require('node:net')
  const target = new URL(url)
  const sockets = new Set()
  let marker
  const cut = deferred()
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname)
    sockets.add(client)
    sockets.add(upstream)
    let swallowing = false
    const end = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('data', (d) => {
      if (marker && !swallowing && d.includes(marker)) {
        swallowing = true
        marker = undefined
        if (refuse) server.close()
        setTimeout(() => {
          end()
          cut.resolve()
        }, 300)
      }
      upstream.write(d)
    })
    upstream.on('data', (d) => {
      if (!swallowing) client.write(d)
    })
    for (const s of [client, upstream]) {
      s.on('error', end)
      s.on('close', end)
    }
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const via = new URL(url)
  via.port = String(server.address().port)
  // no TLS: the proxy must see the appended event
  via.searchParams.set('sslmode', 'disable')
  return {
    url: via.toString(),
    cut: cut.promise,
    arm(text) {
      marker = text
    },
    close() {
      if (server.listening) server.close()
      for (const s of sockets) s.destroy()
    },
  }
}

describeMysql('faults: MariaDB stopped and restarted (a server of its own)', () => {
  /** @type {Awaited<ReturnType<typeof createCluster>> | undefined} */
  let server
  before(async () => {
    server = await createCluster('mysql')
  })
  after(async () => {
    if (server) await server.destroy()
  })
  it(RESTART, { timeout: 90000 }, (t) => restartScenario(t, server, 'mysql'))
})

describePg('faults: a PostgreSQL connection cut after the commit of an append', () => {
  /** A database, a proxy to it, a provider through the proxy and user u1 created. */
  async function setUp(t, refuse) {
    const db = await createDatabase()
    t.after(() => db.drop())
    const pg = providerModule('postgres')
    await pg.migrate({ url: db.url })
    const proxy = await cuttingProxy(db.url, { refuse })
    const provider = pg.createProvider({ url: proxy.url })
    t.after(async () => {
      await provider.close()
      proxy.close()
    })
    await provider.ready
    const { userCmd } = makeDomain(provider)
    await userCmd.create('u1', { name: 'a' })
    const storedEvents = async () =>
      (await query(db.url, "SELECT version, event FROM events WHERE aggregate_id = 'u1' ORDER BY version")).rows.map(
        (r) => ({ version: Number(r.version), event: JSON.parse(r.event) })
      )
    return { proxy, userCmd, storedEvents }
  }

  const events = (marker) => [
    { type: 'loggedIn', marker },
    { type: 'renamed', name: 'b', marker },
  ]

  it('the retry on a new connection finds the committed events: the command resolves and nothing is stored twice', async (t) => {
    const { proxy, userCmd, storedEvents } = await setUp(t, false)
    proxy.arm('cut-then-reachable')
    const agg = await userCmd.emit('u1', { events: events('cut-then-reachable') })
    await proxy.cut
    assert.equal(agg.version, 3)
    assert.equal(agg.name, 'b')
    assert.deepEqual(
      (await storedEvents()).map((e) => `${e.version}:${e.event.type}`),
      ['1:created', '2:loggedIn', '3:renamed']
    )
  })

  it(
    'when the server cannot be reached for the retry, the error does not claim that nothing was stored',
    async (t) => {
      const { proxy, userCmd, storedEvents } = await setUp(t, true)
      proxy.arm('cut-then-unreachable')
      const err = await caught(() => userCmd.emit('u1', { events: events('cut-then-unreachable') }))
      await proxy.cut
      const stored = await storedEvents()
      const ours = stored.filter((e) => e.event.marker === 'cut-then-unreachable')
      t.diagnostic(`${ours.length} of 2 events stored; the command failed with ${err.code}: ${err.message.split('\n')[0]}`)
      // all or nothing
      assert.ok(ours.length === 0 || ours.length === 2, `${ours.length} of 2 events stored`)
      assert.notEqual(err.code, 'VERSION_CONFLICT')
      if (ours.length === 2) {
        // stored: the user must be told that it may have been
        assert.equal(err.code, 'CONNECTION_LOST', `the events are stored, but the error says ${err.code}: ${err.message}`)
        assert.match(err.message, /may have been stored/)
      }
    }
  )
})

// ---------------------------------------------------------------------------
// 2. Callbacks that throw in a started handler: onError gets the event that threw
// ---------------------------------------------------------------------------

const THROWING = ['memory', 'sqlite file', 'plain JavaScript provider', 'postgres url']

for (const factory of factories.filter((f) => THROWING.includes(f.name))) {
  describe(`faults: a throwing callback in a started handler [${factory.name}]`, () => {
    if (factory.skip || factory.fail) {
      it('needs its server', factory.skip ? { skip: factory.skip } : {}, () => {
        throw new Error(factory.fail)
      })
      return
    }

    /** A fresh provider whose onError records its arguments, and three events: created (no callback), loggedIn, disabled. */
    async function setUp(t) {
      const errors = []
      const ctx = await factory.create({ onError: (...args) => errors.push(args) })
      t.after(() => ctx.cleanup())
      const { userCmd, createHandler } = makeDomain(ctx.provider)
      return { provider: ctx.provider, userCmd, createHandler, errors }
    }

    it('without continueOnError: onError gets the error and the event that threw (not the one before it), the event is retried, nothing before it is handled again', async (t) => {
      const { provider, userCmd, createHandler, errors } = await setUp(t)
      const handler = createHandler('strict-started', ['users'], { retryDelay: 50, pollInterval: 50 })
      const boom = new Error('boom')
      const calls = []
      const finished = deferred()
      let attempts = 0
      // 'created' has no callback: the original reported it as the event that threw
      handler.handle('users', 'loggedIn', async (_id, ev, meta) => {
        calls.push(`${ev.type}@${meta.position}`)
        if (++attempts === 1) throw boom
      })
      handler.handle('users', 'disabled', async (_id, ev, meta) => {
        calls.push(`${ev.type}@${meta.position}`)
        finished.resolve()
      })
      await userCmd.create('u1', { name: 'a' })
      await userCmd.login('u1', {})
      await userCmd.disable('u1', {})
      const stored = await provider.getEventsFor('users', 'u1')
      handler.start()
      try {
        await withTimeout(finished.promise, 10000, 'the events after the retried one')
      } finally {
        await handler.stop()
      }
      const p = stored.map((e) => e.position)
      assert.deepEqual(calls, [`loggedIn@${p[1]}`, `loggedIn@${p[1]}`, `disabled@${p[2]}`])
      assert.equal(errors.length, 1)
      const [err, streams, bookmark, event] = errors[0]
      assert.equal(err, boom)
      assert.match(String(streams), /users/)
      assert.equal(bookmark, 'strict-started')
      assert.ok(event, 'onError got no event')
      assert.equal(event.position, p[1])
      assert.equal(event.version, 2)
      assert.equal(event.aggregateId, 'u1')
      assert.equal(event.event.type, 'loggedIn')
      assert.equal(err.event && err.event.position, p[1], 'err.event is not the event that threw')
      assert.equal(await provider.getPosition('strict-started'), p[2])
    })

    it('with continueOnError: onError gets the event that threw and the handler moves on without retrying it', async (t) => {
      const { provider, userCmd, createHandler, errors } = await setUp(t)
      const handler = createHandler('lenient-started', ['users'], { continueOnError: true, pollInterval: 50 })
      const boom = new Error('boom')
      const calls = []
      const finished = deferred()
      handler.handle('users', 'loggedIn', async (_id, ev, meta) => {
        calls.push(`${ev.type}@${meta.position}`)
        throw boom
      })
      handler.handle('users', 'disabled', async (_id, ev, meta) => {
        calls.push(`${ev.type}@${meta.position}`)
        finished.resolve()
      })
      handler.start()
      try {
        await userCmd.create('u1', { name: 'a' })
        await userCmd.login('u1', {})
        await userCmd.disable('u1', {})
        await withTimeout(finished.promise, 10000, 'the event after the failing one')
      } finally {
        await handler.stop()
      }
      const p = (await provider.getEventsFor('users', 'u1')).map((e) => e.position)
      assert.deepEqual(calls, [`loggedIn@${p[1]}`, `disabled@${p[2]}`])
      assert.equal(errors.length, 1)
      const [err, , bookmark, event] = errors[0]
      assert.equal(err, boom)
      assert.equal(bookmark, 'lenient-started')
      assert.ok(event, 'onError got no event')
      assert.equal(event.position, p[1])
      assert.equal(event.event.type, 'loggedIn')
      assert.equal(await provider.getPosition('lenient-started'), p[2])
    })
  })
}

// ---------------------------------------------------------------------------
// 2b. A retryable store fault in a started handler
// ---------------------------------------------------------------------------

/** An error as the core reports a database that cannot be reached for a moment. */
function retryableFault(what) {
  const err = new Error(`${what}: cannot connect (a fault injected by the test)`)
  err.code = 'CANNOT_CONNECT'
  err.retryable = true
  return err
}

const FAULTY_STORES = {
  'plain JavaScript provider': () => createJsProvider(),
  // the spread keeps the native store: the handler waits on the core's waiter
  memory: () => providerModule('memory').createProvider(),
}

for (const [name, create] of Object.entries(FAULTY_STORES)) {
  describe(`faults: a retryable store fault in a started handler [${name}]`, () => {
    // far longer than a test may take: only a retry at the next poll passes
    const timing = { retryDelay: 60000, pollInterval: 50 }

    /** A provider with two users events, and a wrapper of it whose onError records. */
    async function setUp(overrides) {
      const base = create()
      for (const id of ['u1', 'u2']) {
        await base.append('users', id, 1, base.createEvents('users', id, 1, [{ type: 'loggedIn' }]))
      }
      const errors = []
      const provider = { ...base, onError: (err) => errors.push(err), ...overrides(base) }
      const last = await base.getLastEventFor('users')
      return { base, provider, errors, last }
    }

    it('a read that fails once with a retryable error is tried again at the next poll, not after retryDelay', async () => {
      let failures = 0
      const { provider, errors } = await setUp((base) => ({
        async getEventsFrom(...args) {
          if (failures++ === 0) throw retryableFault('getEventsFrom')
          return base.getEventsFrom(...args)
        },
      }))
      const handler = root().createHandler({ bookmark: 'after-read-fault', streams: ['users'], provider, ...timing })
      const ids = []
      const both = deferred()
      handler.handle('users', 'loggedIn', (id) => {
        ids.push(id)
        if (ids.length === 2) both.resolve()
      })
      handler.start()
      try {
        await withTimeout(both.promise, 2000, `the events after a failed read (retryDelay ${timing.retryDelay} ms)`)
      } finally {
        await handler.stop()
      }
      assert.deepEqual(ids, ['u1', 'u2'])
      assert.deepEqual(
        errors.map((e) => e.code),
        ['CANNOT_CONNECT']
      )
    })

    it('a bookmark write that fails once with a retryable error is tried again at the next poll, and nothing is handled twice', async () => {
      let failures = 0
      const { base, provider, errors, last } = await setUp((base) => ({
        async setPosition(...args) {
          if (failures++ === 0) throw retryableFault('setPosition')
          return base.setPosition(...args)
        },
      }))
      const handler = root().createHandler({ bookmark: 'after-write-fault', streams: ['users'], provider, ...timing })
      const ids = []
      handler.handle('users', 'loggedIn', (id) => void ids.push(id))
      handler.start()
      try {
        await waitFor(
          async () => (await base.getPosition('after-write-fault')) === last.position,
          2000,
          `the bookmark written after a failed write (retryDelay ${timing.retryDelay} ms)`
        )
      } finally {
        await handler.stop()
      }
      assert.deepEqual(ids, ['u1', 'u2'])
      assert.deepEqual(
        errors.map((e) => e.code),
        ['CANNOT_CONNECT']
      )
    })

    it('a callback that throws an error marked retryable still waits retryDelay before its event is tried again', async () => {
      const { provider, errors } = await setUp(() => ({}))
      const handler = root().createHandler({ bookmark: 'callback-fault', streams: ['users'], provider, ...timing })
      let attempts = 0
      handler.handle('users', 'loggedIn', () => {
        attempts++
        throw retryableFault('the callback')
      })
      handler.start()
      try {
        await waitFor(() => errors.length === 1, 2000, 'the callback failure reported to onError')
        await delay(10 * timing.pollInterval)
        assert.equal(attempts, 1, 'the callback was retried before retryDelay')
      } finally {
        await handler.stop()
      }
    })
  })
}

// ---------------------------------------------------------------------------
// 3. SIGKILL in the middle of a catch-up
// ---------------------------------------------------------------------------

const EVENTS = 5000
const KILL_BATCH = 100
// not a multiple of the batch size: the kill lands inside a batch
const KILL_AFTER = 1234

/** Stores EVENTS loggedIn events on 100 aggregates through the provider. */
async function seed(provider) {
  for (let a = 0; a < 100; a++) {
    const events = Array.from({ length: EVENTS / 100 }, (_, i) => ({ type: 'loggedIn', i }))
    await provider.append('users', `u${a}`, 1, provider.createEvents('users', `u${a}`, 1, events))
  }
  const positions = []
  for (let after = 0; ; ) {
    const batch = await provider.getEventsFrom(['users'], after, 1000)
    if (batch.length === 0) break
    for (const e of batch) positions.push(e.position)
    after = batch[batch.length - 1].position
  }
  assert.equal(positions.length, EVENTS)
  return positions
}

/**
 * Runs fault-catchup.js, kills it with SIGKILL once it handled KILL_AFTER
 * events, then finishes the catch-up with a new handler on the same bookmark
 * and checks what was delivered twice.
 */
async function killMidCatchUp(t, { kind, target, openProvider, dir }) {
  const seeder = await openProvider()
  let all
  try {
    all = await seed(seeder)
  } finally {
    if (seeder.close) await seeder.close()
  }

  const positionsFile = path.join(dir, 'delivered.txt')
  const victim = child('fault-catchup.js', [kind, target, positionsFile, String(KILL_BATCH)])
  t.after(() => victim.kill())
  await waitFor(
    () => readPositions(positionsFile).length >= KILL_AFTER || victim.proc.exitCode !== null,
    30000,
    `the child handling ${KILL_AFTER} events`
  )
  victim.kill()
  const exit = await victim.exited
  assert.equal(exit.signal, 'SIGKILL', `the child was not killed mid-way: ${JSON.stringify(exit)} ${JSON.stringify(victim.output())}`)
  const first = readPositions(positionsFile)

  const provider = await openProvider()
  t.after(() => provider.close && provider.close())
  const bookmark = await provider.getPosition('catch-up')
  const user = root().createAggregate({ stream: 'users', create: () => ({}), fold: () => ({}) })
  const { createHandler } = root().createDomainV2({ provider }, { user })
  const second = []
  const handler = createHandler('catch-up', ['users'], { batchSize: KILL_BATCH })
  handler.handle('users', 'loggedIn', (_id, _ev, meta) => {
    second.push(meta.position)
  })
  await handler.runOnce()

  const redelivered = second.filter((p) => p <= first[first.length - 1])
  t.diagnostic(
    `${kind}: killed after ${first.length} of ${EVENTS} events; stored bookmark ${bookmark}; ` +
      `${redelivered.length} delivered again (batchSize ${KILL_BATCH})`
  )
  // the killed run: a prefix of the events, in order, nothing skipped
  assert.ok(first.length >= KILL_AFTER && first.length < EVENTS, `the child handled ${first.length} events`)
  assert.deepEqual(first, all.slice(0, first.length), 'the killed handler skipped or repeated events')
  // its stored bookmark is an event it handled (or the start), and at most one batch behind
  assert.ok(bookmark === 0 || first.includes(bookmark), `bookmark ${bookmark} is no handled position`)
  const inFlight = first.filter((p) => p > bookmark)
  assert.ok(inFlight.length <= KILL_BATCH, `${inFlight.length} events handled after the stored bookmark`)
  // the second handler starts right after the bookmark and finishes in order
  assert.deepEqual(second, all.filter((p) => p > bookmark), 'the second handler skipped, repeated or reordered events')
  // what is delivered twice is exactly the in-flight part, in order
  assert.deepEqual(redelivered, inFlight)
  assert.ok(redelivered.length <= KILL_BATCH)
  // every event at least once
  const union = new Set([...first, ...second])
  assert.equal(union.size, EVENTS)
  assert.equal(await provider.getPosition('catch-up'), all[all.length - 1])
}

describe('faults: SIGKILL in the middle of a catch-up [sqlite file]', () => {
  it(`a new handler on the bookmark re-delivers at most the in-flight batch (${EVENTS} events, batchSize ${KILL_BATCH})`, { timeout: 60000 }, async (t) => {
    const dir = tempDir('evtstore-rs-faults-')
    t.after(() => removeDir(dir))
    const file = path.join(dir, 'events.sqlite')
    const sqlite = providerModule('sqlite')
    await sqlite.migrate({ file })
    await killMidCatchUp(t, { kind: 'sqlite', target: file, dir, openProvider: () => sqlite.createProvider({ file }) })
  })
})

describePg('faults: SIGKILL in the middle of a catch-up [postgres]', () => {
  it(`a new handler on the bookmark re-delivers at most the in-flight batch (${EVENTS} events, batchSize ${KILL_BATCH})`, { timeout: 60000 }, async (t) => {
    const dir = tempDir('evtstore-rs-faults-')
    t.after(() => removeDir(dir))
    const db = await createDatabase()
    t.after(() => db.drop())
    const pg = providerModule('postgres')
    await pg.migrate({ url: db.url })
    await killMidCatchUp(t, {
      kind: 'postgres',
      target: db.url,
      dir,
      openProvider: async () => {
        const p = pg.createProvider({ url: db.url })
        await p.ready
        return p
      },
    })
  })
})

// ---------------------------------------------------------------------------
// 4. An SQLite file locked by another process
// ---------------------------------------------------------------------------

describe('faults: an SQLite file locked by another process', () => {
  /** A migrated file with one user, a provider on it and the lock-holding child's runner. */
  async function setUp(t) {
    const dir = tempDir('evtstore-rs-faults-')
    t.after(() => removeDir(dir))
    const file = path.join(dir, 'events.sqlite')
    const sqlite = providerModule('sqlite')
    await sqlite.migrate({ file })
    const provider = await sqlite.createProvider({ file })
    t.after(() => provider.close())
    const { userCmd } = makeDomain(provider)
    await userCmd.create('u1', { name: 'a' })
    const lock = (hold) => {
      const holder = child('fault-sqlite-lock.js', [file, String(hold)], { stdin: hold === 'stdin' ? 'pipe' : 'ignore' })
      t.after(() => holder.kill())
      return holder
    }
    return { provider, userCmd, lock }
  }

  it('an append while the lock is held past the busy timeout fails with DATABASE_BUSY (retryable) and stores nothing; after the release it succeeds', { timeout: 60000 }, async (t) => {
    const { provider, userCmd, lock } = await setUp(t)
    const before = await provider.getEventsFrom(['users'], 0)
    const holder = lock('stdin')
    await holder.line('locked')

    const began = Date.now()
    const err = await caught(() => userCmd.loginTimes('u1', { n: 3 }))
    const waited = Date.now() - began
    t.diagnostic(`the append failed after ${waited} ms: ${err.code}: ${err.message}`)
    assert.equal(err.code, 'DATABASE_BUSY', err.stack)
    assert.ok(!(err instanceof root().VersionError))
    assert.equal(err.retryable, true)
    assert.match(err.message, /busy/i)
    assert.match(err.message, /events\.sqlite/)
    // it waited for the lock (the busy timeout is 5 s) before giving up
    assert.ok(waited >= 4000, `gave up after ${waited} ms`)
    // reads are not blocked by the writer's lock (WAL)
    assert.equal((await provider.getEventsFor('users', 'u1')).length, 1)

    holder.proc.stdin.write('release\n')
    await holder.line('released')
    await holder.exited
    assert.deepEqual(await provider.getEventsFrom(['users'], 0), before, 'the failed append stored something')

    const agg = await userCmd.loginTimes('u1', { n: 3 })
    assert.equal(agg.version, 4)
    assert.deepEqual((await provider.getEventsFor('users', 'u1')).map((e) => e.version), [1, 2, 3, 4])
  })

  it('an append waits while the lock is held for less than the busy timeout and then succeeds, once', { timeout: 60000 }, async (t) => {
    const { provider, userCmd, lock } = await setUp(t)
    const HOLD = 1000
    const holder = lock(HOLD)
    await holder.line('locked')
    const began = Date.now()
    const agg = await userCmd.loginTimes('u1', { n: 3 })
    const waited = Date.now() - began
    t.diagnostic(`the append succeeded after ${waited} ms (lock held ${HOLD} ms)`)
    assert.equal(agg.version, 4)
    await holder.exited
    assert.match(holder.output().stdout, /released/)
    const events = await provider.getEventsFor('users', 'u1')
    assert.deepEqual(events.map((e) => e.version), [1, 2, 3, 4])
    assert.deepEqual(events.map((e) => e.event.type), ['created', 'loggedIn', 'loggedIn', 'loggedIn'])
  })
})
