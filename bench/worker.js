'use strict'

// One measurement: one scenario, one implementation, one store, in a process
// of its own (so that neither implementation's heap, JIT state or timers
// affect the other, and so that its peak RSS is its own).
//
// node worker.js '<json spec>'  ->  prints one line: RESULT {"value": ..., ...}

const { SCENARIOS, SIZES } = require('./lib/scenarios')
const { open } = require('./lib/impls')
const data = require('./lib/data')

/**
 * Appender mode: commands on fresh aggregates, one every spec.gapMs, each
 * reported to the parent (IPC) with the time it resolved (epoch ms).
 * @param {any} spec
 */
async function appender(spec) {
  const { performance } = require('perf_hooks')
  const env = await open(spec.impl, spec.store, { file: spec.file, url: spec.url, events: spec.events, bookmarks: spec.bookmarks })
  try {
    const { api, provider } = env
    const agg = api.createAggregate({ stream: data.STREAM, create: () => ({ count: 0 }), fold: (/** @type {any} */ ev, /** @type {any} */ a) => ({ count: a.count + ev.by }) })
    const { domain } = api.createDomainV2({ provider }, { counter: agg })
    const cmd = api.createCommands(domain.counter, { async increment(/** @type {any} */ c) { return { ...data.EVENT, by: c.by } } })
    await cmd.increment('x-warm', { by: 1 })
    for (let i = 0; i < spec.n; i++) {
      const id = `x-${i}`
      await cmd.increment(id, { by: 1 })
      const t = performance.timeOrigin + performance.now()
      await new Promise((resolve) => /** @type {any} */ (process).send({ id, t }, resolve))
      await new Promise((resolve) => setTimeout(resolve, spec.gapMs))
    }
  } finally {
    await env.close().catch(() => {})
  }
}

async function main() {
  const spec = JSON.parse(process.argv[2])
  if (spec.mode === 'appender') return appender(spec)
  const scenario = SCENARIOS.find((s) => s.id === spec.scenario)
  if (!scenario) throw new Error(`unknown scenario ${spec.scenario}`)
  const z = { ...SIZES[spec.size === 'quick' ? 'quick' : 'full'], ...(spec.overrides || {}) }
  const dataset = scenario.dataset(z)

  let scratchDir
  if (['sqlite', 'knex-sqlite', 'sqlite-normal'].includes(spec.store) && !spec.file) {
    // run by hand (profiling): make the data here
    const fs = require('fs')
    const os = require('os')
    const path = require('path')
    scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'evtstore-rs-bench-worker-'))
    spec.file = path.join(scratchDir, 'run.sqlite')
    data.copyTemplate(await data.sqliteTemplate(scratchDir, dataset), spec.file)
  }

  /** @type {any} */
  const ctx = { file: spec.file, url: spec.url, events: spec.events, bookmarks: spec.bookmarks }
  let pool
  if (spec.store === 'memory' && dataset !== 'empty') ctx.initEvents = data.storeEvents(dataset)
  if (spec.store === 'pg') {
    pool = require('./lib/impls').pgPool(spec.url)
    await data.pgTables(pool, spec.events, spec.bookmarks, dataset)
  }
  if (spec.store === 'mysql') await data.mysqlTables(spec.url, spec.events, spec.bookmarks, dataset)
  let neo4jDriver
  if (spec.store === 'neo4j') {
    neo4jDriver = require('./lib/impls').neo4jDriver(spec.url)
    await data.neo4jNodes(neo4jDriver, spec.events, spec.bookmarks, dataset)
  }

  if (spec.store === 'mongo') await data.mongoEvents(require('./lib/impls').providerModule(spec.impl, 'mongo'), spec.url, dataset)

  const env = await open(spec.impl, spec.store, ctx)
  // the initial events are the store's now; the worker keeps no copy
  ctx.initEvents = undefined
  let result
  try {
    result = await scenario.run({ ...env, impl: spec.impl, store: spec.store, spec }, z)
  } finally {
    await env.close().catch(() => {})
    if (pool) {
      await data.pgDrop(pool, spec.events, spec.bookmarks).catch(() => {})
      await pool.end().catch(() => {})
    }
    if (spec.store === 'mysql') await data.mysqlDrop(spec.url, spec.events, spec.bookmarks).catch(() => {})
    if (neo4jDriver) {
      await data.neo4jDrop(neo4jDriver, spec.events, spec.bookmarks).catch(() => {})
      await neo4jDriver.close().catch(() => {})
    }
    if (spec.store === 'mongo') await data.mongoDrop(spec.url).catch(() => {})
    if (scratchDir) require('fs').rmSync(scratchDir, { recursive: true, force: true })
  }
  result.rssMB = process.resourceUsage().maxRSS / 1024
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
}

main().then(
  // evtstore's handlers keep a timer running for ever: end the process here
  () => process.exit(0),
  (err) => {
    const code = err && err.code ? ` [${err.code}]` : ''
    if (process.send) /** @type {any} */ (process).send({ error: `${(err && err.message) || err}${code}` })
    process.stdout.write(`RESULT ${JSON.stringify({ error: `${(err && err.message) || err}${code}` })}\n`)
    process.exit(1)
  }
)
