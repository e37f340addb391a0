'use strict'

const { codedError, fromNative } = require('./errors')
const {
  NATIVE,
  MemoryBookmark,
  toMeta,
  isPositionZero,
  assertName,
  describe,
  assertPositiveInteger,
  assertNonNegativeNumber,
} = require('./util')
const wakeup = require('./wakeup')
const { createCoordinator, partitionOf, DEFAULT_LEASE_MS } = require('./lease')

const DEFAULT_POLL_INTERVAL = 1000
const DEFAULT_BATCH_SIZE = 1000
const DEFAULT_RETRY_DELAY = 10000
// a started handler holds a timer so that Node stays alive until stop()
const KEEP_ALIVE_MS = 1 << 30

/**
 * @param {any} bookmark
 */
function checkBookmark(bookmark) {
  if (typeof bookmark === 'string') {
    if (bookmark === '') throw codedError('INVALID_ARGUMENT', 'handler: the bookmark name must not be empty', TypeError)
    // refused for every provider: the stores would not keep such a name as it is
    assertName(bookmark, 'the bookmark name', 'handler')
    return bookmark
  }
  if (
    bookmark &&
    typeof bookmark === 'object' &&
    typeof bookmark.name === 'string' &&
    typeof bookmark.getPosition === 'function' &&
    typeof bookmark.setPosition === 'function'
  ) {
    return bookmark.name
  }
  throw codedError(
    'INVALID_ARGUMENT',
    `handler: the bookmark must be a name, MemoryBookmark or a ProviderBookmark ({ name, getPosition, setPosition }), got ${describe(bookmark)}`,
    TypeError
  )
}

/**
 * @param {any} streams
 * @returns {string[]}
 */
function checkStreams(streams) {
  const list = typeof streams === 'string' ? [streams] : streams
  if (!Array.isArray(list) || list.length === 0) {
    throw codedError('INVALID_ARGUMENT', 'Cannot create event handler subscribed to no streams', TypeError)
  }
  for (const s of list) {
    if (typeof s !== 'string' || s === '') {
      throw codedError('INVALID_ARGUMENT', `handler: every stream must be a non-empty string, got ${describe(s)}`, TypeError)
    }
    assertName(s, 'the stream name', 'handler')
  }
  return [...list]
}

/**
 * Throws INVALID_ARGUMENT unless `pos` can be a position handed to
 * handler.setPosition: an integer (or BigInt) >= 0, or an object, which a
 * user's provider may use as its position (evtstore's MongoDB provider keeps
 * a BSON Timestamp). Strings, null and numbers that are no position are
 * refused before the handler or the store keeps them.
 * @param {any} pos
 */
function checkPosition(pos) {
  if (typeof pos === 'object' && pos !== null) return
  if (typeof pos === 'bigint' ? pos >= 0n : Number.isInteger(pos) && pos >= 0) return
  throw codedError(
    'INVALID_ARGUMENT',
    `handler.setPosition: the position must be a non-negative integer (the position of the last event handled, 0 to start over), got ${describe(pos)}`,
    TypeError
  )
}

/**
 * @param {any} err
 * @param {any} event
 */
function attachEvent(err, event) {
  if (err !== null && (typeof err === 'object' || typeof err === 'function')) {
    try {
      err.event = event
    } catch {
      /* a frozen error keeps its shape */
    }
  }
}

/**
 * The event handler engine used by every handler API (V1, V2 and the root
 * createHandler).
 *
 * - runOnce(): reads batches from the bookmark's position until a read
 *   returns nothing, awaiting each callback in position order; resolves with
 *   the number of events read. The bookmark is written once per batch and is
 *   exact whenever runOnce settles.
 * - start()/stop(): the loop; when there is nothing to read it waits for a
 *   wake-up (native store head or this package's in-process appends) or
 *   `pollInterval` ms. Batches of the loop and of runOnce never overlap.
 *
 * @param {object} opts
 * @param {any} opts.bookmark
 * @param {string | string[]} opts.streams
 * @param {any} opts.provider a Provider or a Promise of one
 * @param {{ preRun?: () => any, postRun?: (read: number, handled: number) => any }} [opts.hooks]
 * @param {boolean} [opts.tailStream]
 * @param {boolean} [opts.alwaysTailStream]
 * @param {boolean} [opts.continueOnError]
 * @param {number} [opts.pollInterval]
 * @param {number} [opts.batchSize]
 * @param {number} [opts.retryDelay]
 * @param {boolean} [opts.coordinate] false: every process handles every event (no lease)
 * @param {number} [opts.leaseMs]
 * @param {number} [opts.partitions]
 * @param {(state: string, handler: { name: string }) => any} [opts.onStateChange]
 * @param {{ index: number, count: number, coordinator: ReturnType<typeof createCoordinator>, callbacks: Map<string, Map<string, Function>> }} [opts.partition]
 *   set by the partitioned handler for each of its parts
 */
function createEngine(opts) {
  if (!opts || typeof opts !== 'object') {
    throw codedError('INVALID_ARGUMENT', 'handler: expected options', TypeError)
  }
  const bookmark = opts.bookmark
  const name = checkBookmark(bookmark)
  const streams = checkStreams(opts.streams)
  const providerRef = opts.provider
  if (!providerRef || (typeof providerRef !== 'object' && typeof providerRef !== 'function')) {
    throw codedError('INVALID_ARGUMENT', 'handler: a provider (or a Promise of one) is required', TypeError)
  }
  const hooks = opts.hooks || {}
  if (typeof hooks !== 'object') throw codedError('INVALID_ARGUMENT', 'handler: hooks must be an object', TypeError)
  const tailStream = !!opts.tailStream
  const alwaysTailStream = !!opts.alwaysTailStream
  const continueOnError = !!opts.continueOnError
  const pollInterval = opts.pollInterval === undefined ? DEFAULT_POLL_INTERVAL : opts.pollInterval
  assertNonNegativeNumber(pollInterval, 'handler option pollInterval')
  if (pollInterval === 0) {
    throw codedError('INVALID_ARGUMENT', 'handler option pollInterval must be more than 0 ms', TypeError)
  }
  if (opts.batchSize !== undefined) assertPositiveInteger(opts.batchSize, 'handler option batchSize')
  const retryDelay = opts.retryDelay === undefined ? DEFAULT_RETRY_DELAY : opts.retryDelay
  assertNonNegativeNumber(retryDelay, 'handler option retryDelay')
  const { leaseMs, coordinate, onStateChange } = readScaleOptions(opts)
  if (opts.partitions !== undefined && opts.partitions > 1 && !opts.partition) {
    // required here, not at the top: partitioned.js builds on this file
    return require('./partitioned').createPartitioned(opts, createEngine)
  }
  const partition = opts.partition

  /** @type {Map<string, Map<string, Function>>} */
  const callbacks = partition ? partition.callbacks : new Map()

  /** @type {any} */
  let provider
  /**
   * in-memory position: undefined = read the stored bookmark first (a
   * user's provider may keep positions that are not numbers)
   * @type {any}
   */
  let position
  /**
   * what we know the stored bookmark holds
   * @type {any}
   */
  let stored
  /** bumped by reset() and setPosition(pos): a batch in flight then gives way */
  let epoch = 0
  let running = false
  let generation = 0
  /** @type {Promise<void> | undefined} */
  let loopDone
  /** cancels what the loop is waiting on (wake-up, poll or retry delay) */
  let cancelWait = () => {}
  /** serialises batches of runOnce(), run() and the loop */
  let queue = Promise.resolve()
  /** true while a callback runs synchronously (before its first await) */
  let inCallback = false
  /** @type {'active' | 'standby' | 'stopped'} */
  let state = 'stopped'
  /** the lease of a coordinated handler, once started: see lease.js */
  /** @type {ReturnType<typeof createCoordinator> | undefined} */
  let coordinator
  /** @type {import('./lease').Slot | undefined} */
  let slot

  /** @param {'active' | 'standby' | 'stopped'} next */
  function setState(next) {
    if (state === next) return
    state = next
    if (!onStateChange) return
    try {
      const out = onStateChange(next, { name })
      if (out && typeof out.then === 'function') out.then(undefined, report)
    } catch (err) {
      report(err)
    }
  }

  /** Whether this instance may handle events now (a held lease, or none needed). */
  const leaseHeld = () => !slot || (coordinator !== undefined && coordinator.holds(slot))

  /**
   * The lease changed hands: on taking it, the stored bookmark is read again
   * (another instance moved it); on losing it, a batch in flight gives way.
   * @param {'active' | 'standby' | 'stopped'} next
   */
  function onLease(next) {
    if (next !== 'active') epoch++
    position = undefined
    stored = undefined
    if (running) setState(next)
    cancelWait()
  }

  /**
   * Starts the lease campaign of a coordinated handler (a stored bookmark on
   * a native store); the others run without one.
   * @param {any} p the provider
   */
  async function joinLease(p) {
    if (slot || !coordinate || typeof bookmark !== 'string' || bookmark === MemoryBookmark || !p[NATIVE]) return
    const store = await p[NATIVE]
    if (typeof store.claimLease !== 'function') return
    if (partition) {
      coordinator = partition.coordinator
    } else {
      coordinator = createCoordinator({ store: p[NATIVE], name, streams, leaseMs, partitions: 1, report })
    }
    slot = coordinator.slot(name, onLease, () => queue)
    if (!partition) coordinator.start()
  }

  /**
   * @template T
   * @param {() => Promise<T>} fn
   * @returns {Promise<T>}
   */
  function withLock(fn) {
    const run = queue.then(fn)
    queue = run.then(
      () => undefined,
      () => undefined
    )
    return run
  }

  async function getProvider() {
    if (provider) return provider
    const p = await providerRef
    if (!p || typeof p.getEventsFrom !== 'function') {
      throw codedError('INVALID_ARGUMENT', 'handler: the provider has no getEventsFrom(): is it a Provider?', TypeError)
    }
    provider = p
    return p
  }

  /**
   * @param {any} err
   * @param {any} [event]
   */
  function report(err, event) {
    const p = provider
    if (!p || typeof p.onError !== 'function') return
    try {
      const out = p.onError(err, streams.join(', '), name, event)
      if (out && typeof out.then === 'function') out.then(undefined, () => {})
    } catch {
      /* an onError that throws must not stop the handler */
    }
  }

  /** @param {any} p */
  async function zeroPosition(p) {
    if (p[NATIVE]) return 0
    // what the provider answers for a bookmark that does not exist
    return p.getPosition(`@@evtstore-rs/unset/${new Date().toISOString()}`)
  }

  /** @param {any} p */
  async function tailPosition(p) {
    const last = await p.getLastEventFor(streams)
    return last ? last.position : undefined
  }

  async function readStored() {
    const p = await getProvider()
    if (typeof bookmark === 'string') return p.getPosition(bookmark)
    return bookmark.getPosition()
  }

  /** @param {any} pos */
  async function writeStored(pos) {
    if (bookmark === MemoryBookmark) return
    const p = await getProvider()
    const token = slot ? slot.token : 0
    if (token > 0 && coordinator) {
      // fenced: nothing is written once another instance took the lease
      const store = await p[NATIVE]
      let written
      try {
        written = await store.setBookmarkFenced(name, pos, token)
      } catch (err) {
        throw fromNative(err)
      }
      if (!written) {
        if (slot) coordinator.lose(slot)
        return
      }
    } else if (typeof bookmark === 'string') await p.setPosition(bookmark, pos)
    else await bookmark.setPosition(pos)
    stored = pos
  }

  /** Where a handler without an in-memory position begins. */
  async function startPosition() {
    const p = await getProvider()
    if (bookmark === MemoryBookmark) {
      if (alwaysTailStream) {
        const tail = await tailPosition(p)
        if (tail !== undefined) return tail
      }
      const zero = await zeroPosition(p)
      return zero === undefined || zero === null ? 0 : zero
    }
    if (alwaysTailStream) {
      const tail = await tailPosition(p)
      if (tail !== undefined) return tail
    }
    const bm = await readStored()
    stored = bm
    if (tailStream && isPositionZero(bm)) {
      const tail = await tailPosition(p)
      if (tail !== undefined) return tail
    }
    return bm
  }

  /**
   * @param {any} ev
   * @returns {Function | undefined}
   */
  function callbackFor(ev) {
    const byType = callbacks.get(ev.stream)
    if (!byType) return undefined
    const type = ev.event && ev.event.type
    return typeof type === 'string' ? byType.get(type) : undefined
  }

  /**
   * Reads one batch and handles it. Resolves with the number of events read.
   * @param {() => boolean} active false: stop before the next event
   * @param {{ inUserCode: boolean }} [failure] set when what threw is a callback or a hook, not the store
   */
  async function batch(active, failure) {
    if (!active()) return 0
    const p = await getProvider()
    const myEpoch = epoch
    // called as hooks.preRun() (the grouping keeps `this`): the cast only says it is set
    if (hooks.preRun) await userCode(() => /** @type {() => any} */ (hooks.preRun)(), failure)
    let pos = position
    if (pos === undefined) pos = await startPosition()
    const limit = opts.batchSize !== undefined ? opts.batchSize : p.limit ? undefined : DEFAULT_BATCH_SIZE
    const events = await p.getEventsFrom(streams, pos, limit)
    let handled = 0
    let thrown
    let failed = false
    for (let i = 0; i < events.length; i++) {
      if (epoch !== myEpoch || !active()) break
      const ev = events[i]
      const cb = partition && partitionOf(ev.aggregateId, partition.count) !== partition.index ? undefined : callbackFor(ev)
      if (cb) {
        try {
          let out
          inCallback = true
          try {
            out = cb(ev.aggregateId, ev.event, toMeta(ev))
          } finally {
            inCallback = false
          }
          await out
        } catch (err) {
          attachEvent(err, ev)
          if (!continueOnError) {
            thrown = err
            failed = true
            break
          }
          report(err, ev)
        }
        handled++
      }
      pos = ev.position
    }
    if (epoch === myEpoch) {
      position = pos
      if (pos !== stored && pos !== undefined) {
        if (failed) {
          try {
            await writeStored(pos)
          } catch {
            /* the callback's error is the one to report */
          }
        } else {
          await writeStored(pos)
        }
      }
    }
    if (failed) {
      if (failure) failure.inUserCode = true
      throw thrown
    }
    if (hooks.postRun) {
      await userCode(() => /** @type {(read: number, handled: number) => any} */ (hooks.postRun)(events.length, handled), failure)
    }
    return events.length
  }

  /**
   * @param {() => any} fn a hook
   * @param {{ inUserCode: boolean }} [failure]
   */
  async function userCode(fn, failure) {
    try {
      await fn()
    } catch (err) {
      if (failure) failure.inUserCode = true
      throw err
    }
  }

  const always = () => true

  /**
   * Handles every event not handled yet; resolves with the number read.
   * @param {number} [runningCount] added to the result, as evtstore's runOnce(runningCount) does
   */
  function runOnce(runningCount) {
    if (inCallback) {
      return Promise.reject(
        codedError('INVALID_STATE', 'runOnce() cannot be called from one of this handler\'s own callbacks')
      )
    }
    return withLock(async () => {
      let total = typeof runningCount === 'number' && Number.isFinite(runningCount) ? runningCount : 0
      for (;;) {
        const read = await batch(always)
        total += read
        if (read === 0) return total
      }
    })
  }

  /**
   * One catch-up pass of a started handler, failures reported to the
   * provider's onError instead of rejecting. Does nothing when not started.
   */
  async function run() {
    if (!running) return
    const gen = generation
    const active = () => running && generation === gen && leaseHeld()
    try {
      await withLock(async () => {
        while ((await batch(active)) > 0 && active()) {
          /* next batch */
        }
      })
    } catch (/** @type {any} */ err) {
      report(err, err && err.event)
    }
  }

  /**
   * @param {number} ms
   * @returns {Promise<void>}
   */
  function sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        cancelWait = () => {}
        resolve()
      }
      cancelWait = done
    })
  }

  /** @param {number} gen */
  async function loop(gen) {
    const keepAlive = setInterval(() => {}, KEEP_ALIVE_MS)
    const active = () => running && generation === gen
    const handling = () => active() && leaseHeld()
    /** @type {any} */
    let waiter
    const waitOnHead = () => {
      const w = waiter
      cancelWait = w ? () => w.cancel() : () => {}
    }
    try {
      while (active()) {
        const failure = { inUserCode: false }
        try {
          const p = await getProvider()
          await joinLease(p)
          const store = p[NATIVE] ? await p[NATIVE] : undefined
          if (!active()) break
          if (!leaseHeld()) {
            // a standby: woken when the lease comes (onLease) or stop()
            setState('standby')
            await sleep(leaseMs)
            waitOnHead()
            continue
          }
          setState('active')
          if (store && !waiter) {
            waiter = store.createWaiter()
            waitOnHead()
          }
          // the head is taken BEFORE the read: an append after it wakes the wait
          const mark = store ? store.head() : wakeup.seq(p)
          const read = await withLock(() => batch(handling, failure))
          if (read > 0 || !handling()) continue
          if (store) {
            await waiter.wait(mark, pollInterval)
          } else {
            const w = wakeup.wait(p, mark, pollInterval)
            cancelWait = w.cancel
            await w.promise
            cancelWait = () => {}
          }
        } catch (/** @type {any} */ err) {
          report(err, err && err.event)
          if (!active()) break
          // a read or bookmark write that may pass by itself (a database
          // restarting) is tried again at the next poll; a callback that
          // threw waits retryDelay, as in evtstore
          const storeFault = !failure.inUserCode && err !== null && typeof err === 'object' && err.retryable === true
          await sleep(storeFault ? Math.min(retryDelay, pollInterval) : retryDelay)
          waitOnHead()
        }
      }
    } finally {
      clearInterval(keepAlive)
    }
  }

  /** Begins handling events as they arrive. */
  function start() {
    if (running) return
    running = true
    const gen = ++generation
    const previous = loopDone || Promise.resolve()
    // a loop stopped just before keeps its in-flight batch; ours queues behind it
    loopDone = previous.then(() => loop(gen))
  }

  /**
   * Ends the loop; resolves when the in-flight callback finished and the
   * bookmark is written. Called by one of this handler's callbacks (before its
   * first await), it resolves at once instead: waiting for the callback that
   * waits for it would never end; the bookmark is written when it returns.
   */
  function stop() {
    if (running) {
      running = false
      generation++
      cancelWait()
    }
    const done = (loopDone || Promise.resolve()).then(letGo)
    if (inCallback) {
      done.then(undefined, report)
      return Promise.resolve()
    }
    return done
  }

  /** Once the loop ended (bookmark written): the lease goes to a standby at once. */
  async function letGo() {
    if (running) return
    if (coordinator && !partition) await coordinator.stop()
    setState('stopped')
  }

  /**
   * What this handler is doing: its state, position (for a standby, the
   * stored bookmark), lag (events of its streams after that position, on
   * the stores of this package) and lease owner id.
   */
  async function status() {
    const p = await getProvider()
    let pos = position
    if (pos === undefined && bookmark !== MemoryBookmark) pos = await readStored()
    let lag
    if (p[NATIVE] && typeof pos === 'number') {
      const store = await p[NATIVE]
      try {
        lag = await store.countAfter(streams, pos)
      } catch (err) {
        throw fromNative(err)
      }
    }
    return {
      name,
      state,
      position: pos === undefined ? 0 : pos,
      lag,
      owner: coordinator ? coordinator.owner : undefined,
      coordinated: slot !== undefined,
    }
  }

  /** Forgets the in-memory position: the stored bookmark is read again. */
  function reset() {
    epoch++
    position = undefined
    stored = undefined
  }

  /** The current position, or where the handler will begin. */
  async function getPosition() {
    if (position !== undefined) return position
    return startPosition()
  }

  /**
   * Sets the position (when given) and stores it.
   * @param {any} [pos]
   */
  async function setPosition(pos) {
    if (pos !== undefined) {
      checkPosition(pos)
      epoch++
      position = pos
    }
    if (position === undefined) return
    await writeStored(position)
  }

  /**
   * @param {string} stream
   * @param {string} type
   * @param {Function} cb
   */
  function on(stream, type, cb) {
    if (typeof type !== 'string') {
      throw codedError('INVALID_ARGUMENT', `handle: the event type must be a string, got ${describe(type)}`, TypeError)
    }
    if (typeof cb !== 'function') {
      throw codedError('INVALID_ARGUMENT', `handle: the callback for "${type}" must be a function`, TypeError)
    }
    let byType = callbacks.get(stream)
    if (!byType) {
      byType = new Map()
      callbacks.set(stream, byType)
    }
    byType.set(type, cb)
  }

  return {
    name,
    streams,
    on,
    start,
    stop,
    runOnce,
    run,
    reset,
    getPosition,
    setPosition,
    status,
    get state() {
      return state
    },
  }
}

/**
 * The options of handlers on many processes, checked.
 * @param {any} opts
 */
function readScaleOptions(opts) {
  const leaseMs = opts.leaseMs === undefined ? DEFAULT_LEASE_MS : opts.leaseMs
  assertNonNegativeNumber(leaseMs, 'handler option leaseMs')
  if (leaseMs < 300) {
    throw codedError('INVALID_ARGUMENT', `handler option leaseMs must be at least 300 ms (a holder renews every third of it), got ${leaseMs}`, TypeError)
  }
  if (opts.coordinate !== undefined && typeof opts.coordinate !== 'boolean') {
    throw codedError('INVALID_ARGUMENT', `handler option coordinate must be true (one active instance per bookmark) or false (every instance handles every event), got ${describe(opts.coordinate)}`, TypeError)
  }
  if (opts.partitions !== undefined) {
    assertPositiveInteger(opts.partitions, 'handler option partitions')
    if (opts.partitions > 1 && opts.coordinate === false) {
      throw codedError('INVALID_ARGUMENT', 'handler options partitions and coordinate: false do not go together: partitions are shared out through leases', TypeError)
    }
    if (opts.partitions > 1 && (typeof opts.bookmark !== 'string' || opts.bookmark === MemoryBookmark)) {
      throw codedError('INVALID_ARGUMENT', 'handler option partitions needs a stored bookmark (a name): each partition keeps a bookmark of its own', TypeError)
    }
  }
  if (opts.onStateChange !== undefined && typeof opts.onStateChange !== 'function') {
    throw codedError('INVALID_ARGUMENT', `handler option onStateChange must be a function, got ${describe(opts.onStateChange)}`, TypeError)
  }
  return { leaseMs, coordinate: opts.coordinate !== false, onStateChange: opts.onStateChange }
}

/** @param {ReturnType<typeof createEngine>} engine */
function publicMethods(engine) {
  return {
    name: engine.name,
    start: engine.start,
    stop: engine.stop,
    runOnce: engine.runOnce,
    run: engine.run,
    reset: engine.reset,
    getPosition: engine.getPosition,
    setPosition: engine.setPosition,
    status: engine.status,
  }
}

/**
 * Gives `handler` a live `state` property ('active', 'standby' or
 * 'stopped'): a getter, which spreading the methods would have frozen.
 * @template T
 * @param {T} handler
 * @param {{ state: string }} engine
 * @returns {T & { readonly state: string }}
 */
function withState(handler, engine) {
  Object.defineProperty(handler, 'state', { get: () => engine.state, enumerable: true })
  return /** @type {any} */ (handler)
}

/**
 * The root createHandler({ bookmark, streams, provider, ...options }):
 * handle(stream, type, cb) and handleStream(stream, { type: cb }).
 * @param {any} options
 */
function createHandler(options) {
  if (!options || typeof options !== 'object') {
    throw codedError('INVALID_ARGUMENT', 'createHandler: expected { bookmark, streams, provider, ...options }', TypeError)
  }
  const engine = createEngine(options)
  return withState({
    handle: (/** @type {string} */ stream, /** @type {string} */ type, /** @type {Function} */ cb) =>
      engine.on(stream, type, cb),
    handleStream: (/** @type {string} */ stream, /** @type {Record<string, Function>} */ handlers) => {
      if (!handlers || typeof handlers !== 'object') {
        throw codedError('INVALID_ARGUMENT', 'handleStream: expected an object of { eventType: callback }', TypeError)
      }
      for (const type of Object.keys(handlers)) {
        if (handlers[type] !== undefined) engine.on(stream, type, handlers[type])
      }
    },
    ...publicMethods(engine),
  }, engine)
}

module.exports = { createEngine, createHandler, publicMethods, withState, DEFAULT_POLL_INTERVAL, DEFAULT_RETRY_DELAY }
