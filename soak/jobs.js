'use strict'
// The soak jobs. Each runs in a child process of its own (soak.js forks one
// per job, with --expose-gc), so the memory figures of one store are not
// mixed with another's, and sends its result back over IPC.
//
//   events    N events appended in batches while a started handler consumes
//             them (live), then a second handler catches up over all of them
//   commands  many async loops issuing commands on a few shared aggregates
//             (VersionErrors retried) for a while, a started handler beside
//             them; then the store is read back and checked
//   cache     memory cost of useCache, unbounded and with cacheSize
//
// Only the package's public API is used to run the load. The checks after a
// commands job read the tables with another driver (node-postgres,
// better-sqlite3, both dev dependencies), not through the package.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { performance } = require('node:perf_hooks')
const { setImmediate: turn, setTimeout: sleep } = require('node:timers/promises')

const ROOT = path.resolve(__dirname, '..')
const pkg = require(ROOT)
const providerModule = (/** @type {string} */ name) => require(path.join(ROOT, 'provider', name))

const MB = 2 ** 20

/** RSS and heap now; after a full GC when `collect` (heapUsed then means live objects). */
function memory(collect = true) {
  if (collect && global.gc) global.gc()
  const m = process.memoryUsage()
  return { rss: m.rss / MB, heapUsed: m.heapUsed / MB, external: m.external / MB, arrayBuffers: m.arrayBuffers / MB }
}

/** Samples RSS every `ms` without collecting: the highest value and a time series. */
function sampler(ms) {
  const t0 = performance.now()
  /** @type {{ t: number, rss: number, heapUsed: number }[]} */
  const series = []
  let peak = 0
  const take = () => {
    const m = process.memoryUsage()
    const rss = m.rss / MB
    if (rss > peak) peak = rss
    series.push({ t: (performance.now() - t0) / 1000, rss, heapUsed: m.heapUsed / MB })
  }
  take()
  const timer = setInterval(take, ms)
  return {
    stop() {
      clearInterval(timer)
      take()
      return { peak, series }
    },
  }
}

/** @param {number[]} sorted ascending @param {number} p 0..1 */
function quantile(sorted, p) {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  return sorted[i]
}

/** A failure list capped so that a broken run cannot fill the memory with messages. */
function problems() {
  /** @type {string[]} */
  const list = []
  let count = 0
  return {
    add(/** @type {string} */ msg) {
      count++
      if (list.length < 10) list.push(msg)
    },
    get count() {
      return count
    },
    get list() {
      return list
    },
  }
}

/**
 * Opens a fresh, migrated store of `kind`, with a reader that looks at its
 * table without the package, and a cleanup.
 * @param {string} kind memory | sqlite | postgres
 * @param {string} tag part of the table names
 * @param {any} cfg
 */
async function openStore(kind, tag, cfg) {
  if (kind === 'memory') {
    const provider = providerModule('memory').createProvider()
    return {
      provider,
      label: 'memory',
      /** @param {string} stream */
      async readAll(stream) {
        return readThroughProvider(provider, stream)
      },
      readerName: 'provider.getEventsFrom (no other reader for memory)',
      async close() {},
    }
  }
  if (kind === 'sqlite') {
    const sqlite = providerModule('sqlite')
    const dir = fs.mkdtempSync(path.join(cfg.tmp || os.tmpdir(), 'evtstore-soak-'))
    const file = path.join(dir, 'events.sqlite')
    await sqlite.migrate({ file })
    const provider = await sqlite.createProvider({ file })
    return {
      provider,
      label: 'SQLite file',
      file,
      /** @param {string} stream */
      async readAll(stream) {
        const Database = require('better-sqlite3')
        const db = new Database(file, { readonly: true })
        try {
          return db
            .prepare('SELECT position, version, aggregate_id, event FROM events WHERE stream = ? ORDER BY position')
            .all(stream)
            .map(toRow)
        } finally {
          db.close()
        }
      },
      /** @param {string} stream */
      async count(stream) {
        const Database = require('better-sqlite3')
        const db = new Database(file, { readonly: true })
        try {
          const r = /** @type {any} */ (db.prepare('SELECT count(*) AS n, max(position) AS last FROM events WHERE stream = ?').get(stream))
          return { n: Number(r.n), last: Number(r.last) }
        } finally {
          db.close()
        }
      },
      readerName: 'better-sqlite3 on the file',
      fileBytes: () => fileSize(file),
      async close() {
        await provider.close()
        fs.rmSync(dir, { recursive: true, force: true })
      },
    }
  }
  if (kind === 'postgres') {
    if (!cfg.pgUrl) throw new Error('postgres: no URL (--pg URL or EVTSTORE_SOAK_PG_URL)')
    const pgp = providerModule('postgres')
    const events = `soak_${process.pid}_${tag}_events`
    const bookmarks = `soak_${process.pid}_${tag}_bookmarks`
    await pgp.migrate({ url: cfg.pgUrl, events, bookmarks })
    const provider = pgp.createProvider({ url: cfg.pgUrl, events, bookmarks })
    await provider.ready
    const query = async (/** @type {string} */ text, /** @type {any[]} */ values = []) => {
      const { Client } = require('pg')
      const client = new Client({ connectionString: cfg.pgUrl })
      await client.connect()
      try {
        return (await client.query(text, values)).rows
      } finally {
        await client.end()
      }
    }
    return {
      provider,
      label: 'PostgreSQL',
      /** @param {string} stream */
      async readAll(stream) {
        const rows = await query(
          `SELECT position, version, aggregate_id, event FROM ${events} WHERE stream = $1 ORDER BY position`,
          [stream]
        )
        return rows.map(toRow)
      },
      /** @param {string} stream */
      async count(stream) {
        const [r] = await query(`SELECT count(*) AS n, max(position) AS last FROM ${events} WHERE stream = $1`, [stream])
        return { n: Number(r.n), last: Number(r.last) }
      },
      readerName: 'node-postgres on the table',
      async tableBytes() {
        const [r] = await query(`SELECT pg_total_relation_size($1) AS b`, [events])
        return Number(r.b)
      },
      async close() {
        await provider.close()
        await query(`DROP TABLE IF EXISTS ${events}, ${bookmarks}`)
      },
    }
  }
  throw new Error(`unknown store ${kind}`)
}

/** @param {any} r */
function toRow(r) {
  return {
    position: Number(r.position),
    version: Number(r.version),
    aggregateId: r.aggregate_id,
    event: typeof r.event === 'string' ? JSON.parse(r.event) : r.event,
  }
}

/** @param {any} provider @param {string} stream */
async function readThroughProvider(provider, stream) {
  const out = []
  let from = 0
  for (;;) {
    const page = await provider.getEventsFrom([stream], from, 10000)
    for (const e of page) {
      out.push({ position: Number(e.position), version: e.version, aggregateId: e.aggregateId, event: e.event })
    }
    if (page.length < 10000) return out
    from = page[page.length - 1].position
  }
}

/** @param {string} file */
function fileSize(file) {
  let total = 0
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      total += fs.statSync(f).size
    } catch {
      /* not there */
    }
  }
  return total
}

// ---------------------------------------------------------------------------
// events: N events through a started handler

/**
 * A handler on `stream` with running checks: event `seq` numbers arrive
 * 0, 1, 2, ... (so each event once, in append order), positions strictly
 * increase, each aggregate's versions arrive 1, 2, 3, ...; memory is taken
 * (after a GC) when the handler starts, at the middle and at the end.
 * @param {any} provider
 * @param {string} stream
 * @param {string} bookmark
 * @param {number} total
 */
function checkedHandler(provider, stream, bookmark, total) {
  const bad = problems()
  /** @type {Map<string, number>} */
  const versions = new Map()
  let delivered = 0
  let lastPosition = 0
  /** @type {Record<string, any>} */
  const mem = {}
  let startedAt = 0
  let firstAt = 0
  let doneAt = 0
  /** @type {() => void} */
  let finish = () => {}
  const done = new Promise((resolve) => {
    finish = () => resolve(undefined)
  })
  const handler = pkg.createHandler({ bookmark, streams: [stream], provider })
  handler.handle(stream, 'tick', (/** @type {string} */ id, /** @type {any} */ ev, /** @type {any} */ meta) => {
    if (delivered === 0) firstAt = performance.now()
    if (ev.seq !== delivered) bad.add(`event #${delivered} carried seq ${ev.seq} (position ${meta.position})`)
    if (!(meta.position > lastPosition)) bad.add(`position ${meta.position} after ${lastPosition}`)
    const v = (versions.get(id) || 0) + 1
    if (meta.version !== v) bad.add(`aggregate ${id}: version ${meta.version} where ${v} was next`)
    versions.set(id, meta.version)
    lastPosition = meta.position
    delivered++
    if (delivered === Math.floor(total / 2)) mem.middle = memory()
    if (delivered === total) {
      doneAt = performance.now()
      mem.end = memory()
      finish()
    }
  })
  return {
    start() {
      mem.start = memory()
      startedAt = performance.now()
      handler.start()
    },
    done,
    stop: () => handler.stop(),
    result() {
      return {
        delivered,
        lastPosition,
        problems: bad.count,
        problemList: bad.list,
        seconds: (doneAt - startedAt) / 1000,
        firstEventMs: firstAt ? firstAt - startedAt : NaN,
        mem,
      }
    },
  }
}

/** @param {any} cfg @param {string} kind */
async function eventsJob(cfg, kind) {
  const total = cfg.events
  const batch = cfg.batch
  const aggregates = cfg.eventAggregates
  const stream = 'soak'
  const out = /** @type {Record<string, any>} */ ({ job: 'events', store: kind, events: total, batch, aggregates })
  out.memBeforeStore = memory()
  const store = await openStore(kind, 'ev', cfg)
  out.label = store.label
  try {
    const watch = sampler(250)
    const live = checkedHandler(store.provider, stream, 'soak-live', total)
    live.start()

    // the writer: batches of `batch` events to aggregates a0, a1, ... in turn
    const versions = new Array(aggregates).fill(0)
    let seq = 0
    let lastAppended = 0
    let appends = 0
    const t0 = performance.now()
    for (let b = 0; seq < total; b++) {
      const a = b % aggregates
      const n = Math.min(batch, total - seq)
      const events = new Array(n)
      for (let i = 0; i < n; i++) events[i] = { type: 'tick', seq: seq + i, note: 'soak event' }
      const stored = await store.provider.append(stream, `a${a}`, versions[a] + 1, events)
      versions[a] += n
      seq += n
      appends++
      lastAppended = stored[stored.length - 1].position
      // let the handler (and the sampler) in, whatever the store: the memory
      // provider's append never leaves the microtask queue
      await turn()
      if (cfg.progress && appends % 1000 === 0) progress(`${kind}: ${seq.toLocaleString('en-US')} appended`)
    }
    const writeSeconds = (performance.now() - t0) / 1000
    const writerDoneAt = performance.now()
    await withTimeout(live.done, cfg.waitMs, () => `live handler: ${live.result().delivered} of ${total} delivered`)
    const liveLagMs = performance.now() - writerDoneAt
    await live.stop()
    const liveWatch = watch.stop()
    out.append = { seconds: writeSeconds, appends, eventsPerSecond: total / writeSeconds, lastAppended }
    out.live = { ...live.result(), lagAfterWriterMs: liveLagMs, peakRss: liveWatch.peak }
    out.live.bookmark = Number(await store.provider.getPosition('soak-live'))

    // a second handler from position 0 over everything: the handler alone
    const watch2 = sampler(250)
    const catchup = checkedHandler(store.provider, stream, 'soak-catchup', total)
    catchup.start()
    await withTimeout(catchup.done, cfg.waitMs, () => `catch-up handler: ${catchup.result().delivered} of ${total} delivered`)
    await catchup.stop()
    out.catchup = { ...catchup.result(), peakRss: watch2.stop().peak }
    out.catchup.bookmark = Number(await store.provider.getPosition('soak-catchup'))

    if (store.count) out.stored = await store.count(stream)
    if (store.fileBytes) out.storeBytes = store.fileBytes()
    if (store.tableBytes) out.storeBytes = await store.tableBytes()
    out.maxRss = process.resourceUsage().maxRSS / 1024

    const checks = []
    const each = (/** @type {any} */ h, /** @type {string} */ name) => {
      checks.push({
        name: `${name}: no lost event`,
        ok: h.delivered === total && h.lastPosition === lastAppended && h.bookmark === lastAppended,
        detail: `${h.delivered.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} delivered, last position ${h.lastPosition} (appended up to ${lastAppended}), bookmark ${h.bookmark}`,
      })
      checks.push({
        name: `${name}: no duplicate, in order`,
        ok: h.problems === 0,
        detail:
          h.problems === 0
            ? 'seq numbers consecutive, positions strictly increasing, versions consecutive per aggregate'
            : `${h.problems} problems: ${h.problemList.join('; ')}`,
      })
    }
    each(out.live, 'live handler')
    each(out.catchup, 'catch-up handler')
    if (out.stored) {
      checks.push({
        name: 'store holds every event',
        ok: out.stored.n === total && out.stored.last === lastAppended,
        detail: `${out.stored.n.toLocaleString('en-US')} rows (${store.readerName}), last position ${out.stored.last}`,
      })
    }
    out.checks = checks
  } finally {
    await store.close()
  }
  return out
}

// ---------------------------------------------------------------------------
// commands: concurrent command streams on shared aggregates

/** @param {any} cfg @param {string} kind */
async function commandsJob(cfg, kind) {
  const { createAggregate, createDomainV2, createCommands } = pkg
  const streams = cfg.streams
  const aggregates = cfg.aggregates
  const cacheSize = cfg.cacheSize || Math.max(1, Math.floor(aggregates / 2))
  const stream = 'orders'
  const out = /** @type {Record<string, any>} */ ({
    job: 'commands',
    store: kind,
    streams,
    aggregates,
    cacheSize,
    plannedSeconds: cfg.seconds,
  })
  const store = await openStore(kind, 'cmd', cfg)
  out.label = store.label
  try {
    const counter = createAggregate({
      stream,
      create: () => ({ count: 0, sum: 0 }),
      fold: (/** @type {any} */ ev, /** @type {any} */ agg) => ({ count: agg.count + 1, sum: agg.sum + ev.n }),
    })
    // a cache smaller than the set of aggregates: evictions all the time
    const { domain, createHandler } = createDomainV2({ provider: store.provider, useCache: true, cacheSize }, { counter })
    const cmd = createCommands(domain.counter, {
      async add(/** @type {any} */ c) {
        const one = (/** @type {number} */ part) => ({ type: 'added', cmd: c.cmd, part, n: 1 })
        return c.parts === 1 ? one(0) : [one(0), one(1)]
      },
    })

    // the handler: positions strictly increasing, versions 1, 2, 3, ... per aggregate
    const bad = problems()
    /** @type {number[]} */
    const delivered = []
    /** @type {Map<string, number>} */
    const seenVersion = new Map()
    const handler = createHandler('soak-commands', [stream])
    handler.handle(stream, 'added', (/** @type {string} */ id, /** @type {any} */ _ev, /** @type {any} */ meta) => {
      const last = delivered.length ? delivered[delivered.length - 1] : 0
      if (!(meta.position > last)) bad.add(`handler: position ${meta.position} after ${last}`)
      const v = (seenVersion.get(id) || 0) + 1
      if (meta.version !== v) bad.add(`handler: ${id} version ${meta.version} where ${v} was next`)
      seenVersion.set(id, meta.version)
      delivered.push(meta.position)
    })

    const memStart = memory()
    const watch = sampler(1000)
    handler.start()

    /** @type {number[]} */
    const attemptMs = []
    /** @type {number[]} */
    const commandMs = []
    /** successful commands: [cmd id, aggregate index, version after, parts] */
    /** @type {number[][]} */
    const ok = []
    let versionErrors = 0
    let gaveUp = 0
    const otherErrors = problems()
    const t0 = performance.now()
    const deadline = t0 + cfg.seconds * 1000

    // a small deterministic generator per loop, so runs are comparable
    const rng = (/** @type {number} */ seed) => {
      let x = seed * 2654435761 + 1
      return () => {
        x ^= x << 13
        x ^= x >>> 17
        x ^= x << 5
        return (x >>> 0) / 4294967296
      }
    }

    const loop = async (/** @type {number} */ loopId) => {
      const rand = rng(loopId + 1)
      for (let k = 0; performance.now() < deadline; k++) {
        const a = Math.floor(rand() * aggregates)
        const cmdId = loopId * 1e7 + k
        const parts = k % 10 === 9 ? 2 : 1
        const started = performance.now()
        for (let attempt = 1; ; attempt++) {
          const at = performance.now()
          try {
            const next = await cmd.add(`agg${a}`, { cmd: cmdId, parts })
            attemptMs.push(performance.now() - at)
            ok.push([cmdId, a, next.version, parts])
            break
          } catch (/** @type {any} */ err) {
            attemptMs.push(performance.now() - at)
            if (err && err.code === 'VERSION_CONFLICT') {
              versionErrors++
              if (attempt < 1000) continue
              gaveUp++
            } else {
              otherErrors.add(`${err && err.code}: ${err && err.message}`)
            }
            break
          }
        }
        commandMs.push(performance.now() - started)
      }
    }
    // successful commands per quarter of the run: does the rate hold?
    const quarters = [0, 0, 0, 0]
    const quarterTimer = setInterval(() => {
      const q = Math.min(3, Math.floor(((performance.now() - t0) / (cfg.seconds * 1000)) * 4))
      quarters[q] = ok.length
    }, 100)
    await Promise.all(Array.from({ length: streams }, (_, i) => loop(i)))
    clearInterval(quarterTimer)
    quarters[3] = ok.length
    for (let q = 1; q < 4; q++) if (quarters[q] < quarters[q - 1]) quarters[q] = quarters[q - 1]
    const seconds = (performance.now() - t0) / 1000
    const memEndOfLoad = memory()

    const eventsOk = ok.reduce((s, c) => s + c[3], 0)
    const waitStart = performance.now()
    while (delivered.length < eventsOk && performance.now() - waitStart < cfg.waitMs) await sleep(20)
    const handlerLagMs = performance.now() - waitStart
    await handler.stop()
    const series = watch.stop().series

    // read the store back with another driver and compare
    const rows = await store.readAll(stream)
    const checks = []
    /** @type {Map<number, any[]>} */
    const byCmd = new Map()
    for (const r of rows) {
      const list = byCmd.get(r.event.cmd)
      if (list) list.push(r)
      else byCmd.set(r.event.cmd, [r])
    }
    let lost = 0
    let wrong = 0
    /** @type {string[]} */
    const lostList = []
    for (const [cmdId, a, version, parts] of ok) {
      const got = byCmd.get(cmdId)
      if (!got) {
        lost++
        if (lostList.length < 5) lostList.push(`command ${cmdId} on agg${a} (version ${version})`)
        continue
      }
      const fine =
        got.length === parts &&
        got.every((r, i) => r.aggregateId === `agg${a}` && r.version === version - parts + 1 + i && r.event.part === i)
      if (!fine) {
        wrong++
        if (lostList.length < 5) lostList.push(`command ${cmdId}: stored as ${JSON.stringify(got.map((r) => [r.aggregateId, r.version]))}`)
      }
      byCmd.delete(cmdId)
    }
    const strays = byCmd.size // events of commands that did not succeed
    checks.push({
      name: 'no lost event',
      ok: lost === 0 && wrong === 0,
      detail: `${ok.length.toLocaleString('en-US')} successful commands, each found with its ${eventsOk.toLocaleString('en-US')} events at the versions it returned (${store.readerName})${lost || wrong ? `; ${lost} missing, ${wrong} different: ${lostList.join('; ')}` : ''}`,
    })

    /** @type {Map<string, number[]>} */
    const perAggregate = new Map()
    for (const r of rows) {
      const list = perAggregate.get(r.aggregateId)
      if (list) list.push(r.version)
      else perAggregate.set(r.aggregateId, [r.version])
    }
    let gaps = 0
    for (const [, versions] of perAggregate) {
      // rows come in position order: the versions must already be 1, 2, 3, ...
      versions.forEach((v, i) => {
        if (v !== i + 1) gaps++
      })
    }
    let positionsMatch = delivered.length === rows.length
    for (let i = 0; positionsMatch && i < rows.length; i++) positionsMatch = delivered[i] === rows[i].position
    checks.push({
      name: 'no duplicate',
      ok: gaps === 0 && strays === 0 && positionsMatch && bad.count === 0,
      detail:
        `versions 1..n in position order on all ${perAggregate.size} aggregates${gaps ? ` (NOT: ${gaps} out of place)` : ''}; ` +
        `${strays} events of failed commands; handler got ${delivered.length.toLocaleString('en-US')} events, ` +
        `${positionsMatch ? 'exactly the stored positions, each once, in order' : 'NOT the stored positions'}` +
        (bad.count ? `; ${bad.count} handler problems: ${bad.list.join('; ')}` : ''),
    })
    checks.push({
      name: 'counts match',
      ok: rows.length === eventsOk && otherErrors.count === 0 && gaveUp === 0,
      detail: `${rows.length.toLocaleString('en-US')} events stored, ${eventsOk.toLocaleString('en-US')} returned by successful commands; ${otherErrors.count} other errors${otherErrors.count ? `: ${otherErrors.list.join('; ')}` : ''}; ${gaveUp} commands gave up after 1,000 VersionErrors`,
    })

    attemptMs.sort((x, y) => x - y)
    commandMs.sort((x, y) => x - y)
    Object.assign(out, {
      seconds,
      commands: ok.length,
      events: eventsOk,
      attempts: attemptMs.length,
      versionErrors,
      commandsPerSecond: ok.length / seconds,
      commandsPerSecondByQuarter: quarters.map((c, q) => (c - (q ? quarters[q - 1] : 0)) / (cfg.seconds / 4)),
      eventsPerAggregateAtEnd: rows.length / Math.max(1, perAggregate.size),
      attemptsPerSecond: attemptMs.length / seconds,
      attempt: { p50: quantile(attemptMs, 0.5), p99: quantile(attemptMs, 0.99), max: attemptMs[attemptMs.length - 1] },
      command: { p50: quantile(commandMs, 0.5), p99: quantile(commandMs, 0.99), max: commandMs[commandMs.length - 1] },
      handlerLagMs,
      memStart,
      memEndOfLoad,
      memEnd: memory(),
      rssSeries: series.map((s) => [+s.t.toFixed(1), +s.rss.toFixed(1), +s.heapUsed.toFixed(1)]),
      maxRss: process.resourceUsage().maxRSS / 1024,
      checks,
    })
  } finally {
    await store.close()
  }
  return out
}

// ---------------------------------------------------------------------------
// cache: what useCache costs in memory, with and without cacheSize

/** @param {any} cfg */
async function cacheJob(cfg) {
  const { createAggregate, createDomainV2 } = pkg
  const n = cfg.cacheAggregates
  const bound = Math.max(1, Math.floor(n / 10))
  const provider = providerModule('memory').createProvider()
  for (let i = 0; i < n; i++) {
    await provider.append('accounts', `acc${i}`, 1, [{ type: 'opened', owner: `owner ${i}`, limit: i }])
  }
  const account = createAggregate({
    stream: 'accounts',
    create: () => ({ owner: '', limit: 0, balance: 0 }),
    fold: (/** @type {any} */ ev) => ({ owner: ev.owner, limit: ev.limit }),
  })
  const variants = [
    { name: 'no cache', opts: {}, cached: 0 },
    { name: 'useCache: true (no bound)', opts: { useCache: true }, cached: n },
    {
      name: `useCache: true, cacheSize: ${bound.toLocaleString('en-US')}`,
      opts: { useCache: true, cacheSize: bound },
      cached: bound,
    },
  ]
  // a warm-up pass, so that the first variant does not pay for the JIT alone
  const warm = createDomainV2({ provider }, { account }).domain
  for (let i = 0; i < n; i++) await warm.account.getAggregate(`acc${i}`)
  const rows = []
  const bad = problems()
  for (const v of variants) {
    let domain = createDomainV2({ provider, ...v.opts }, { account }).domain
    const before = memory()
    const pass = async () => {
      const t = performance.now()
      for (let i = 0; i < n; i++) {
        const agg = await domain.account.getAggregate(`acc${i}`)
        if (agg.limit !== i || agg.version !== 1) bad.add(`${v.name}: acc${i} loaded as ${JSON.stringify(agg)}`)
      }
      return (performance.now() - t) / 1000
    }
    const first = await pass()
    const after = memory()
    const second = await pass()
    rows.push({
      name: v.name,
      heapMB: after.heapUsed - before.heapUsed,
      bytesPerCached: v.cached ? ((after.heapUsed - before.heapUsed) * MB) / v.cached : NaN,
      firstPassPerSecond: n / first,
      secondPassPerSecond: n / second,
    })
    domain = /** @type {any} */ (null)
    memory()
  }
  return {
    job: 'cache',
    store: 'memory',
    label: 'memory',
    aggregates: n,
    bound,
    rows,
    checks: [
      {
        name: 'every load gave the right aggregate',
        ok: bad.count === 0,
        detail: bad.count ? bad.list.join('; ') : `${(n * 2 * variants.length).toLocaleString('en-US')} loads`,
      },
    ],
  }
}

/** @param {string} msg */
function progress(msg) {
  process.stderr.write(`  ... ${msg}\n`)
}

/**
 * @param {Promise<any>} promise
 * @param {number} ms
 * @param {() => string} what
 */
async function withTimeout(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** @param {any} job */
async function run(job) {
  if (job.job === 'events') return eventsJob(job.cfg, job.store)
  if (job.job === 'commands') return commandsJob(job.cfg, job.store)
  if (job.job === 'cache') return cacheJob(job.cfg)
  throw new Error(`unknown job ${job.job}`)
}

module.exports = { run }
