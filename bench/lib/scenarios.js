'use strict'

// The scenarios. Each one is run in a fresh worker process per
// implementation and repetition (see worker.js); `run` gets the opened
// implementation and returns { value, ...extra } where `value` is in `unit`
// (lower is better for every scenario).

const { performance } = require('perf_hooks')
const { STREAM, EVENT } = require('./data')

/** Sizes: full run, and --quick (a smoke run that finishes in seconds). */
const SIZES = {
  full: {
    seq: 2000,
    conc: 1000,
    concOne: 50,
    hydrate: [1000, 10000],
    catchup: 20000,
    delayAppends: 200,
    delayGapMs: 5,
    memStored: [0, 100000, 1000000],
    memCommands: 2000,
    memCapMs: 5000,
    warmup: 200,
    warmupMs: 3000,
  },
  quick: {
    seq: 40,
    conc: 40,
    concOne: 10,
    hydrate: [100, 500],
    catchup: 500,
    delayAppends: 10,
    delayGapMs: 5,
    memStored: [0, 2000, 20000],
    memCommands: 100,
    memCapMs: 1000,
    warmup: 8,
    warmupMs: 500,
  },
}

const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * @param {any} api
 * @param {string} [stream]
 */
function counterAggregate(api, stream = STREAM) {
  return api.createAggregate({
    stream,
    create: () => ({ count: 0 }),
    fold: (/** @type {any} */ ev, /** @type {any} */ agg) => ({ count: agg.count + (ev.by || 0) }),
  })
}

/**
 * A domain with one counter aggregate and its `increment` command.
 * @param {any} env
 * @param {boolean} [useCache]
 * @param {{ provider?: any, stream?: string }} [where] another provider or stream (warm-ups)
 */
function counterDomain(env, useCache, where = {}) {
  const { api } = env
  const provider = where.provider || env.provider
  const { domain, createHandler } = api.createDomainV2(
    { provider, useCache: !!useCache },
    { counter: counterAggregate(api, where.stream) }
  )
  const cmd = api.createCommands(domain.counter, {
    async increment(/** @type {any} */ c) {
      return { ...EVENT, by: c.by }
    },
  })
  return { domain, createHandler, cmd }
}

/**
 * Untimed work of the same kinds as the scenario (commands, reads, a handler
 * catch-up), so that both implementations are measured with their code
 * compiled by the JIT, as in a process that has been running for a while.
 * It runs on a second, empty store for the memory provider (evtstore's scans
 * every stored event, so events left by a warm-up would slow it down), and
 * on a stream of its own ('warmup') on SQL stores (indexed: other streams'
 * rows cost nothing there).
 * @param {any} env
 * @param {any} z
 * @param {{ handler?: boolean, useCache?: boolean }} [what]
 */
async function warmup(env, z, what = {}) {
  const where = env.store === 'memory' ? { provider: env.scratch(), stream: STREAM } : { stream: 'warmup' }
  const { cmd, domain, createHandler } = counterDomain(env, !!what.useCache, where)
  const t0 = performance.now()
  const budget = () => performance.now() - t0 < z.warmupMs
  const n = z.warmup
  for (let i = 0; i < n && budget(); i++) await cmd.increment(`warm-${i}`, { by: 1 })
  for (let i = 0; i < n / 4 && budget(); i++) await cmd.increment('warm-one', { by: 1 })
  if (budget()) await Promise.allSettled(Array.from({ length: n / 4 }, (_, i) => cmd.increment(`warm-c-${i}`, { by: 1 })))
  for (let i = 0; i < 5 && budget(); i++) await domain.counter.getAggregate('warm-one')
  if (what.handler && budget()) {
    const handler = createHandler('warmup-bookmark', [where.stream])
    handler.handle(where.stream, 'incremented', async () => {})
    await handler.runOnce()
  }
}

/**
 * Runs z.delayAppends commands in a child process (worker.js in appender
 * mode) on the same database; resolves with the time each one resolved
 * there (epoch ms, same clock).
 * @param {any} spec the worker's spec (store, file or url and tables)
 * @param {any} z
 * @returns {Promise<{ resolvedAt: Map<string, number>, ids: string[] }>}
 */
function appendFromChild(spec, z) {
  const { fork } = require('child_process')
  const path = require('path')
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, '..', 'worker.js'), [JSON.stringify({ ...spec, mode: 'appender', n: z.delayAppends, gapMs: z.delayGapMs })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    /** @type {Map<string, number>} */
    const resolvedAt = new Map()
    const ids = []
    let error
    child.on('message', (/** @type {any} */ m) => {
      if (m.id) {
        resolvedAt.set(m.id, m.t)
        ids.push(m.id)
      }
      if (m.error) error = m.error
    })
    child.on('exit', (code) => {
      if (error || code !== 0) reject(new Error(`the appender process failed: ${error || `exit ${code}`}`))
      else resolve({ resolvedAt, ids })
    })
  })
}

/** @param {any} err */
function isVersionError(err) {
  return !!err && err.code === 'VERSION_CONFLICT'
}

/**
 * Versions stored more than once for one aggregate (by the provider's reads).
 * @param {any} provider
 * @param {string} id
 */
async function duplicateVersions(provider, id) {
  const events = await provider.getEventsFor(STREAM, id)
  const versions = new Set(events.map((/** @type {any} */ e) => e.version))
  return { stored: events.length, duplicates: events.length - versions.size }
}

/**
 * @param {number[]} xs
 * @param {number} p 0..1
 */
function percentile(xs, p) {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))
  return s[i]
}

/**
 * @typedef {object} Scenario
 * @property {string} id
 * @property {(z: any) => string} title
 * @property {string[]} stores
 * @property {(z: any) => string} dataset
 * @property {string} unit
 * @property {(env: any, z: any) => Promise<any>} run
 * @property {number} [targetRatio] original/ours at least this much
 * @property {string[]} [targetStores] stores the target applies to
 * @property {number} [targetOurs] ours at most this much (in unit)
 * @property {boolean} [secondaryRss] also report the peak RSS of its workers
 * @property {Record<string, string>} [noTarget] stores where no target applies, and why
 */

/** @type {Scenario[]} */
const SCENARIOS = [
  {
    id: 'cmd-seq-distinct',
    title: (z) => `${fmtN(z.seq)} sequential commands, distinct aggregates`,
    stores: ['memory', 'sqlite', 'pg', 'mysql', 'mongo', 'neo4j'],
    dataset: () => 'empty',
    unit: 'ms',
    targetRatio: 2,
    targetStores: ['sqlite', 'pg', 'mysql'],
    async run(env, z) {
      await warmup(env, z)
      const { cmd } = counterDomain(env)
      const t0 = performance.now()
      for (let i = 0; i < z.seq; i++) await cmd.increment(`a-${i}`, { by: 1 })
      return { value: performance.now() - t0 }
    },
  },
  {
    id: 'cmd-seq-one',
    title: (z) => `${fmtN(z.seq)} sequential commands, one aggregate`,
    stores: ['memory', 'sqlite', 'pg', 'mysql', 'mongo'],
    dataset: () => 'empty',
    unit: 'ms',
    async run(env, z) {
      await warmup(env, z)
      const { cmd } = counterDomain(env, false)
      const t0 = performance.now()
      let agg
      for (let i = 0; i < z.seq; i++) agg = await cmd.increment('one', { by: 1 })
      const value = performance.now() - t0
      if (!agg || agg.version !== z.seq || agg.count !== z.seq) throw new Error(`wrong aggregate ${JSON.stringify(agg)}`)
      return { value }
    },
  },
  {
    id: 'cmd-seq-one-cache',
    title: (z) => `${fmtN(z.seq)} sequential commands, one aggregate, useCache`,
    stores: ['memory', 'sqlite', 'pg', 'mysql', 'mongo'],
    dataset: () => 'empty',
    unit: 'ms',
    async run(env, z) {
      await warmup(env, z, { useCache: true })
      const { cmd } = counterDomain(env, true)
      const t0 = performance.now()
      let agg
      for (let i = 0; i < z.seq; i++) agg = await cmd.increment('one', { by: 1 })
      const value = performance.now() - t0
      if (!agg || agg.version !== z.seq || agg.count !== z.seq) throw new Error(`wrong aggregate ${JSON.stringify(agg)}`)
      return { value }
    },
  },
  {
    id: 'cmd-conc-distinct',
    title: (z) => `${fmtN(z.conc)} concurrent commands (Promise.all), distinct aggregates`,
    stores: ['memory', 'sqlite', 'pg', 'mysql', 'mongo', 'neo4j'],
    dataset: () => 'empty',
    unit: 'ms',
    targetRatio: 3,
    targetStores: ['sqlite', 'pg', 'mysql'],
    async run(env, z) {
      await warmup(env, z)
      const { cmd } = counterDomain(env)
      const t0 = performance.now()
      const out = await Promise.allSettled(Array.from({ length: z.conc }, (_, i) => cmd.increment(`c-${i}`, { by: 1 })))
      const value = performance.now() - t0
      const failed = out.filter((r) => r.status === 'rejected')
      if (failed.length) {
        const first = /** @type {PromiseRejectedResult} */ (failed[0]).reason
        throw new Error(`${failed.length} of ${z.conc} commands failed, first: ${first && first.message}`)
      }
      return { value }
    },
  },
  {
    id: 'cmd-conc-one',
    title: (z) => `${fmtN(z.concOne)} concurrent commands, one aggregate`,
    stores: ['memory', 'sqlite', 'pg', 'mysql', 'mongo'],
    dataset: () => 'empty',
    unit: 'ms',
    async run(env, z) {
      await warmup(env, z)
      const { cmd } = counterDomain(env)
      const t0 = performance.now()
      const out = await Promise.allSettled(Array.from({ length: z.concOne }, () => cmd.increment('race', { by: 1 })))
      const value = performance.now() - t0
      let ok = 0
      let versionErrors = 0
      let otherErrors = 0
      let otherMessage
      for (const r of out) {
        if (r.status === 'fulfilled') ok++
        else if (isVersionError(r.reason)) versionErrors++
        else {
          otherErrors++
          otherMessage = otherMessage || (r.reason && r.reason.message)
        }
      }
      const { stored, duplicates } = await duplicateVersions(env.provider, 'race')
      return { value, ok, versionErrors, otherErrors, otherMessage, stored, duplicates }
    },
  },
  ...[0, 1].map((k) => ({
    id: `hydrate-${k === 0 ? 'small' : 'large'}`,
    title: (/** @type {any} */ z) => `hydrate an aggregate of ${fmtN(z.hydrate[k])} events (per read)`,
    stores: k === 0 ? ['memory', 'sqlite', 'pg', 'mysql', 'mongo', 'neo4j'] : ['memory', 'sqlite', 'pg', 'mysql', 'mongo'],
    dataset: (/** @type {any} */ z) => `agg:${z.hydrate[k]}`,
    unit: 'ms',
    targetRatio: k === 1 ? 2 : undefined,
    targetStores: k === 1 ? ['sqlite', 'pg', 'mysql'] : undefined,
    async run(/** @type {any} */ env, /** @type {any} */ z) {
      const n = z.hydrate[k]
      await warmup(env, z)
      const { domain } = counterDomain(env, false)
      const check = (/** @type {any} */ agg) => {
        if (agg.version !== n || agg.count !== n) throw new Error(`hydrated ${agg.version} events, expected ${n}`)
      }
      check(await domain.counter.getAggregate('hyd')) // warm-up
      const reads = Math.max(3, Math.min(20, Math.round(200000 / n)))
      const times = []
      for (let i = 0; i < reads; i++) {
        const t0 = performance.now()
        const agg = await domain.counter.getAggregate('hyd')
        times.push(performance.now() - t0)
        check(agg)
      }
      return { value: percentile(times, 0.5), reads }
    },
  })),
  ...['stored', 'memory'].map((bm) => ({
    id: `catchup-${bm}`,
    title: (/** @type {any} */ z) =>
      `handler catch-up from 0 over ${fmtN(z.catchup)} events, ${bm === 'stored' ? 'stored bookmark' : 'MemoryBookmark'}`,
    stores: bm === 'stored' ? ['memory', 'sqlite', 'pg', 'mysql', 'mongo', 'neo4j'] : ['memory', 'sqlite', 'pg', 'mysql', 'mongo'],
    dataset: (/** @type {any} */ z) => `spread:${z.catchup}`,
    unit: 'ms',
    targetRatio: bm === 'stored' ? 10 : undefined,
    targetStores: bm === 'stored' ? ['sqlite', 'pg', 'mysql'] : undefined,
    secondaryRss: true,
    async run(/** @type {any} */ env, /** @type {any} */ z) {
      await warmup(env, z, { handler: true })
      const { createHandler } = counterDomain(env)
      const handler = createHandler(bm === 'stored' ? 'bench-catchup' : env.api.MemoryBookmark, [STREAM])
      let seen = 0
      handler.handle(STREAM, 'incremented', async () => {
        seen++
      })
      const t0 = performance.now()
      await handler.runOnce()
      const value = performance.now() - t0
      if (seen !== z.catchup) throw new Error(`the handler saw ${seen} events, expected ${z.catchup}`)
      if (bm === 'stored') {
        const stored = await env.provider.getPosition('bench-catchup')
        if (Number(stored) < z.catchup) throw new Error(`stored bookmark ${stored}, expected ${z.catchup}`)
      }
      return { value }
    },
  })),
  {
    id: 'handler-delay',
    title: (z) => `started handler: append resolved -> callback, p50 of ${fmtN(z.delayAppends)} appends ${z.delayGapMs} ms apart`,
    stores: ['memory', 'sqlite', 'pg', 'mysql', 'mongo'],
    dataset: () => 'empty',
    unit: 'ms',
    targetOurs: 5,
    async run(env, z) {
      await warmup(env, z)
      const { cmd, createHandler } = counterDomain(env)
      const handler = createHandler('bench-delay', [STREAM])
      /** @type {Map<string, number>} */
      const seenAt = new Map()
      handler.handle(STREAM, 'incremented', async (/** @type {string} */ id) => {
        if (!seenAt.has(id)) seenAt.set(id, performance.now())
      })
      handler.start()
      const waitSeen = async (/** @type {string[]} */ ids, /** @type {number} */ ms) => {
        const t0 = performance.now()
        while (ids.some((id) => !seenAt.has(id))) {
          if (performance.now() - t0 > ms) return false
          await sleep(2)
        }
        return true
      }
      // steady state first: the handler has started and handled one event
      await cmd.increment('warm', { by: 1 })
      if (!(await waitSeen(['warm'], 5000))) throw new Error('the started handler did not see the warm-up event in 5 s')
      /** @type {Map<string, number>} */
      const resolvedAt = new Map()
      const ids = []
      for (let i = 0; i < z.delayAppends; i++) {
        const id = `d-${i}`
        ids.push(id)
        await cmd.increment(id, { by: 1 })
        resolvedAt.set(id, performance.now())
        await sleep(z.delayGapMs)
      }
      const all = await waitSeen(ids, 10000)
      await handler.stop()
      if (!all) throw new Error(`the handler saw ${ids.filter((id) => seenAt.has(id)).length} of ${ids.length} events in 10 s`)
      const delays = ids.map((id) => Math.max(0, /** @type {number} */ (seenAt.get(id)) - /** @type {number} */ (resolvedAt.get(id))))
      return { value: percentile(delays, 0.5), p99: percentile(delays, 0.99), max: Math.max(...delays) }
    },
  },
  {
    id: 'handler-delay-xproc',
    title: (z) =>
      `started handler, appends from another process: append resolved -> callback, p50 of ${fmtN(z.delayAppends)} appends ${z.delayGapMs} ms apart`,
    stores: ['sqlite', 'pg', 'mysql', 'mongo'],
    dataset: () => 'empty',
    unit: 'ms',
    targetOurs: 50,
    targetStores: ['pg', 'sqlite', 'mysql'],
    async run(env, z) {
      await warmup(env, z)
      const { createHandler } = counterDomain(env)
      const handler = createHandler('bench-delay-xproc', [STREAM])
      const now = () => performance.timeOrigin + performance.now()
      /** @type {Map<string, number>} */
      const seenAt = new Map()
      handler.handle(STREAM, 'incremented', async (/** @type {string} */ id) => {
        if (!seenAt.has(id)) seenAt.set(id, now())
      })
      handler.start()
      const { resolvedAt, ids } = await appendFromChild(env.spec, z)
      const t0 = performance.now()
      while (ids.some((id) => !seenAt.has(id)) && performance.now() - t0 < 10000) await sleep(2)
      await handler.stop()
      const missing = ids.filter((id) => !seenAt.has(id)).length
      if (missing) throw new Error(`the handler saw ${ids.length - missing} of ${ids.length} events in 10 s`)
      const delays = ids.map((id) => Math.max(0, /** @type {number} */ (seenAt.get(id)) - /** @type {number} */ (resolvedAt.get(id))))
      return { value: percentile(delays, 0.5), p99: percentile(delays, 0.99), max: Math.max(...delays) }
    },
  },
  ...[0, 1, 2].map((k) => ({
    id: `mem-latency-${k}`,
    title: (/** @type {any} */ z) => `in-memory command latency, ${fmtN(z.memStored[k])} events stored (per command)`,
    stores: ['memory'],
    dataset: (/** @type {any} */ z) => (z.memStored[k] === 0 ? 'empty' : `spread:${z.memStored[k]}`),
    unit: 'µs',
    targetRatio: k === 1 ? 100 : undefined,
    targetStores: k === 1 ? ['memory'] : undefined,
    async run(/** @type {any} */ env, /** @type {any} */ z) {
      await warmup(env, z)
      const { cmd } = counterDomain(env)
      const t0 = performance.now()
      let done = 0
      // fresh aggregates that are not in the store: the cost of the store's size alone
      while (done < z.memCommands && performance.now() - t0 < z.memCapMs) {
        await cmd.increment(`fresh-${done}`, { by: 1 })
        done++
      }
      const elapsed = performance.now() - t0
      return { value: (elapsed * 1000) / done, commands: done, capped: done < z.memCommands }
    },
  })),
]

/** @param {number} n */
function fmtN(n) {
  return n.toLocaleString('en-US')
}

module.exports = { SCENARIOS, SIZES, percentile, fmtN }
