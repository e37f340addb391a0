'use strict'
// Handlers on many processes, checked the same way on every store
// (many-instances.test.js): three processes (fixtures/lease-handler.js) run
// one handler on one bookmark while this process appends; the active one is
// killed with SIGKILL, twice; then every stored event must have been handled,
// each aggregate's events in version order, none skipped, repeats only from
// a killed process's batch in flight, and no two processes active at once
// (from the state changes each logged with its pid and the time).
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { withTimeout, delay } = require('./helpers')
const { startFixture, providerArgs } = require('./cross-process')
const { openServerProvider } = require('./fixtures/server-provider')
const { partitionOf } = require('../lib/lease')

const BATCH = 20 // the fixture's batchSize
const FAILOVER_BOUND_MS = 5000 // with the default lease of 3000 ms

/**
 * @param {{ form: string, url: string, events?: string, bookmarks?: string }} store
 * @param {string[]} args lease-handler.js's after the provider's
 */
const startInstance = (store, args) => startFixture('lease-handler.js', [...providerArgs(store), ...args])

/** @param {string} file */
function readLog(file) {
  if (!fs.existsSync(file)) return []
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
}

/**
 * The periods each (pid, part) was active: [from, to), `to` the next state
 * it logged, or its kill, or Infinity.
 * @param {any[]} log
 * @param {Map<number, number>} killedAt
 */
function activePeriods(log, killedAt) {
  /** @type {Map<string, { pid: number, part: string, from: number, to: number }[]>} */
  const byPart = new Map()
  /** @type {Map<string, { pid: number, part: string, from: number, to: number }>} */
  const open = new Map()
  for (const fact of log) {
    if (!fact.state || !fact.part) continue
    const key = `${fact.pid} ${fact.part}`
    const current = open.get(key)
    if (current) {
      current.to = fact.t
      open.delete(key)
    }
    if (fact.state === 'active') {
      const period = { pid: fact.pid, part: fact.part, from: fact.t, to: killedAt.get(fact.pid) ?? Infinity }
      open.set(key, period)
      const list = byPart.get(fact.part) || []
      list.push(period)
      byPart.set(fact.part, list)
    }
  }
  return byPart
}

/**
 * The scenario. `partitions` > 1 runs a partitioned handler; `kills` active
 * processes are killed one after another (each after it handled a while).
 * @param {import('node:test').TestContext} t
 * @param {{ store: { form: string, url: string, events?: string, bookmarks?: string }, partitions?: number, kills?: number, handleMs?: number }} opts
 */
async function instancesTakeTurns(t, { store, partitions = 1, kills = 2, handleMs = 2 }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evtstore-rs-instances-'))
  const log = path.join(dir, 'log.jsonl')
  const bookmark = `orders-${process.pid}-${Date.now()}`
  const { provider, close } = openServerProvider(store.form, store.url, { events: store.events || 'events', bookmarks: store.bookmarks || 'bookmarks' })
  const instances = []
  /** @type {Map<number, number>} pid -> when it was killed */
  const killedAt = new Map()
  let writing = true
  /** @type {Promise<number>} */
  let writer = Promise.resolve(0)
  try {
    await provider.ready
    for (let i = 0; i < 3; i++) instances.push(await startInstance(store, [bookmark, String(partitions), log, String(handleMs)]))
    // the writers: 8 aggregates, one event each in turn, about 100 a second
    writer = (async () => {
      let appended = 0
      for (let round = 1; writing; round++) {
        for (let a = 0; a < 8 && writing; a++) {
          await provider.append('orders', `o${a}`, round, [{ type: 'placed', round }])
          appended++
          await delay(10)
        }
      }
      return appended
    })()

    const handledBy = (/** @type {number} */ pid) => readLog(log).filter((f) => f.pid === pid && f.id !== undefined).length
    const activeNow = () => {
      const alive = instances.filter((i) => !killedAt.has(i.pid))
      const last = new Map()
      for (const f of readLog(log)) if (f.state && f.part) last.set(`${f.pid} ${f.part}`, f)
      return alive.filter((i) => [...last.values()].some((f) => f.pid === i.pid && f.state === 'active'))
    }
    /** @type {number[]} */
    const failovers = []
    for (let k = 0; k < kills; k++) {
      // the victim: an active process that has handled events for a while
      const victim = await withTimeout(
        (async () => {
          for (;;) {
            const active = activeNow()
            const ready = active.find((i) => handledBy(i.pid) >= 30)
            if (ready) return ready
            await delay(50)
          }
        })(),
        30000,
        'an active instance that handled events'
      )
      victim.child.kill('SIGKILL')
      const killTime = Date.now()
      killedAt.set(victim.pid, killTime)
      await victim.finished
      // what the victim held goes to another process: measured from the kill
      const takeover = await withTimeout(
        (async () => {
          for (;;) {
            const fact = readLog(log).find((f) => f.state === 'active' && f.t >= killTime && f.pid !== victim.pid)
            if (fact) return fact
            await delay(25)
          }
        })(),
        15000,
        'a standby taking over'
      )
      failovers.push(takeover.t - killTime)
    }
    writing = false
    const appended = await writer
    // every event handled: each bookmark reaches the last position
    const stored = await provider.getEventsFrom(['orders'], 0)
    assert.equal(stored.length, appended)
    const last = stored[stored.length - 1].position
    const names = partitions > 1 ? Array.from({ length: partitions }, (_, i) => `${bookmark}#${i}/${partitions}`) : [bookmark]
    await withTimeout(
      (async () => {
        for (;;) {
          const positions = await Promise.all(names.map((n) => provider.getPosition(n)))
          if (positions.every((p) => p === last)) return
          await delay(100)
        }
      })(),
      30000,
      'the survivors handling every event'
    )
    for (const i of instances) if (!killedAt.has(i.pid)) i.child.kill('SIGTERM')
    for (const i of instances) {
      const code = await withTimeout(i.finished, 20000, 'an instance exit')
      if (!killedAt.has(i.pid)) assert.equal(code, 0, i.stderr())
    }

    const facts = readLog(log)
    const handled = facts.filter((f) => f.id !== undefined)
    // none skipped
    const seen = new Set(handled.map((f) => f.p))
    const skipped = stored.filter((e) => !seen.has(e.position))
    assert.deepEqual(skipped, [], 'every stored event was handled')
    // each aggregate's events first handled in version order
    /** @type {Map<string, number>} */
    const nextVersion = new Map()
    /** @type {Set<string>} */
    const once = new Set()
    const repeats = []
    for (const f of handled) {
      const key = `${f.id}/${f.v}`
      if (once.has(key)) {
        repeats.push(f)
        continue
      }
      once.add(key)
      const want = nextVersion.get(f.id) || 1
      assert.equal(f.v, want, `aggregate ${f.id}: version ${f.v} handled before ${want}`)
      nextVersion.set(f.id, want + 1)
    }
    // repeats only of what a killed process handled in its batch in flight
    for (const r of repeats) {
      const first = handled.find((f) => f.id === r.id && f.v === r.v)
      assert.ok(killedAt.has(first.pid), `event ${r.id}/${r.v} handled twice, first by ${first.pid}, which was not killed`)
      if (partitions === 1) {
        const lastBatch = facts.filter((f) => f.pid === first.pid && f.batch !== undefined).pop()
        assert.ok(!lastBatch || first.t >= lastBatch.t, `event ${r.id}/${r.v} repeated although its batch was done`)
      }
    }
    assert.ok(repeats.length <= kills * BATCH * partitions, `${repeats.length} repeats`)
    // never two processes active on one bookmark (part) at once
    const periods = activePeriods(facts, killedAt)
    assert.ok(periods.size >= 1)
    for (const [part, list] of periods) {
      list.sort((a, b) => a.from - b.from)
      for (let i = 1; i < list.length; i++) {
        assert.ok(
          list[i].from >= list[i - 1].to,
          `${part}: ${list[i].pid} active from ${list[i].from} while ${list[i - 1].pid} was active until ${list[i - 1].to}`
        )
      }
    }
    // and each event was handled by a process active for its part then
    for (const f of handled) {
      const part = partitions > 1 ? `${bookmark}#${partitionOf(f.id, partitions)}/${partitions}` : bookmark
      const list = periods.get(part) || []
      assert.ok(
        list.some((p) => p.pid === f.pid && p.from <= f.t && f.t <= p.to),
        `${f.id}/${f.v} handled by ${f.pid} at ${f.t} outside its active periods for ${part}`
      )
    }
    for (const ms of failovers) assert.ok(ms < FAILOVER_BOUND_MS, `failover took ${ms} ms`)
    t.diagnostic(`${appended} events, ${handled.length} handled (${repeats.length} repeats), failovers after SIGKILL: ${failovers.join(', ')} ms`)
    return { failovers, repeats: repeats.length, appended }
  } finally {
    writing = false
    await writer.catch(() => 0)
    for (const i of instances) i.child.kill('SIGKILL')
    await close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * stop() hands over at once: two instances, the active one is sent SIGTERM
 * (the fixture then awaits handler.stop()); the other must be active well
 * within a lease length of the release (a standby looks every leaseMs / 6).
 * @param {import('node:test').TestContext} t
 * @param {{ store: { form: string, url: string, events?: string, bookmarks?: string } }} opts
 */
async function stopHandsOver(t, { store }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evtstore-rs-instances-'))
  const log = path.join(dir, 'log.jsonl')
  const bookmark = `handover-${process.pid}-${Date.now()}`
  const instances = []
  try {
    for (let i = 0; i < 2; i++) instances.push(await startInstance(store, [bookmark, '1', log, '0']))
    const active = await withTimeout(
      (async () => {
        for (;;) {
          const fact = readLog(log).find((f) => f.state === 'active')
          if (fact) return fact
          await delay(25)
        }
      })(),
      15000,
      'an active instance'
    )
    const leaving = instances.find((i) => i.pid === active.pid)
    const staying = instances.find((i) => i.pid !== active.pid)
    assert.ok(leaving && staying)
    const sent = Date.now()
    leaving.child.kill('SIGTERM')
    const code = await withTimeout(leaving.finished, 15000, 'the stopped instance exit')
    assert.equal(code, 0, leaving.stderr())
    const facts = await withTimeout(
      (async () => {
        for (;;) {
          const all = readLog(log)
          if (all.some((f) => f.pid === staying.pid && f.state === 'active')) return all
          await delay(25)
        }
      })(),
      10000,
      'the standby taking over'
    )
    const took = facts.find((f) => f.pid === staying.pid && f.state === 'active')
    assert.ok(facts.some((f) => f.pid === leaving.pid && f.state === 'stopped'), 'the leaving instance logged stopped')
    const ms = took.t - sent
    assert.ok(ms < 1500, `handed over ${ms} ms after SIGTERM (stop()); a lease is 3000 ms`)
    t.diagnostic(`handed over ${ms} ms after stop()`)
  } finally {
    for (const i of instances) i.child.kill('SIGKILL')
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

module.exports = { instancesTakeTurns, stopHandsOver }
