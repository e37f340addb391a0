'use strict'

const { createCoordinator, DEFAULT_LEASE_MS } = require('./lease')
const { NATIVE } = require('./util')

/**
 * A handler split into `partitions` parts by a stable hash of the aggregate
 * id (lease.js `partitionOf`): part i handles the events of the aggregates
 * in partition i, keeps the bookmark `<name>#<i>/<count>` and has a lease of
 * its own. The running instances share the parts out between them, so each
 * aggregate's events stay in order while the work spreads over processes;
 * events of different aggregates are handled in no set order.
 *
 * @param {any} opts the handler's options (checked by createEngine)
 * @param {(opts: any) => any} createEngine
 */
function createPartitioned(opts, createEngine) {
  const count = opts.partitions
  const name = opts.bookmark
  const leaseMs = opts.leaseMs === undefined ? DEFAULT_LEASE_MS : opts.leaseMs
  /** @type {Map<string, Map<string, Function>>} */
  const callbacks = new Map()
  const store = Promise.resolve(opts.provider).then((p) => {
    if (!p || !p[NATIVE]) {
      throw require('./errors').codedError(
        'INVALID_ARGUMENT',
        'handler option partitions needs a provider of this package (SQLite, PostgreSQL, MySQL, MongoDB or Neo4j): the parts are shared out through leases in its store',
        TypeError
      )
    }
    return p[NATIVE]
  })
  store.catch(() => {})
  /** @param {any} err */
  async function report(err) {
    const p = await opts.provider
    if (p && typeof p.onError === 'function') p.onError(err, parts[0].streams.join(', '), name)
  }
  const coordinator = createCoordinator({ store, name, streams: Array.isArray(opts.streams) ? opts.streams : [opts.streams], leaseMs, partitions: count, report })
  const onStateChange = opts.onStateChange
  /** @type {any[]} */
  const parts = []
  for (let index = 0; index < count; index++) {
    parts.push(
      createEngine({
        ...opts,
        partitions: undefined,
        onStateChange: onStateChange && ((/** @type {string} */ state, /** @type {any} */ h) => onStateChange(state, h)),
        bookmark: `${name}#${index}/${count}`,
        partition: { index, count, coordinator, callbacks },
      })
    )
  }
  let running = false

  function start() {
    if (running) return
    running = true
    store.then(
      () => running && coordinator.start(),
      (err) => report(err)
    )
    for (const part of parts) part.start()
  }

  async function stop() {
    running = false
    await Promise.all(parts.map((part) => part.stop()))
    if (!running) await coordinator.stop()
  }

  /** @param {number} [runningCount] */
  async function runOnce(runningCount) {
    let total = typeof runningCount === 'number' && Number.isFinite(runningCount) ? runningCount : 0
    for (const part of parts) total += await part.runOnce()
    return total
  }

  /** The lowest position of the parts: every event before it is handled. */
  async function getPosition() {
    const all = await Promise.all(parts.map((part) => part.getPosition()))
    return Math.min(...all)
  }

  /** @param {any} [pos] */
  async function setPosition(pos) {
    for (const part of parts) await part.setPosition(pos)
  }

  async function status() {
    const all = await Promise.all(parts.map((part) => part.status()))
    return {
      name,
      state: state(),
      position: Math.min(...all.map((s) => s.position)),
      lag: all.every((s) => s.lag !== undefined) ? all.reduce((sum, s) => sum + s.lag, 0) : undefined,
      owner: coordinator.owner,
      coordinated: true,
      partitions: all,
    }
  }

  /** active while it holds a part, standby while it holds none */
  function state() {
    if (!running && parts.every((part) => part.state === 'stopped')) return 'stopped'
    return parts.some((part) => part.state === 'active') ? 'active' : 'standby'
  }

  return {
    name,
    streams: parts[0].streams,
    on: parts[0].on,
    start,
    stop,
    runOnce,
    run: async () => {
      for (const part of parts) await part.run()
    },
    reset: () => parts.forEach((part) => part.reset()),
    getPosition,
    setPosition,
    status,
    get state() {
      return state()
    },
  }
}

module.exports = { createPartitioned }
