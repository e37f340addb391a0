'use strict'

const { NATIVE, SYNC_MEMORY, toMeta, copyOf, isPlainObject, isThenable, assertPositiveInteger } = require('./util')
const { codedError } = require('./errors')

/**
 * Every event of one aggregate after `from`. A provider with a `limit' may
 * return its events in pages (evtstore's contract): ask again after the last
 * position until a short page. Native providers return everything at once,
 * so their read is handed back as it is (no extra async step).
 * @param {any} provider
 * @param {string} stream
 * @param {string} id
 * @param {any} [from]
 * @returns {Promise<any[]> | any[]}
 */
function getAllEventsFor(provider, stream, id, from) {
  const sync = provider[SYNC_MEMORY]
  if (sync && provider.getEventsFor === sync.getEventsFor) return sync.eventsFor(stream, id, from)
  if (provider[NATIVE]) return provider.getEventsFor(stream, id, from)
  return pagedEventsFor(provider, stream, id, from)
}

/**
 * @param {any} provider
 * @param {string} stream
 * @param {string} id
 * @param {any} [from]
 */
async function pagedEventsFor(provider, stream, id, from) {
  const first = await provider.getEventsFor(stream, id, from)
  if (!provider.limit || first.length < provider.limit || first.length === 0) return first
  const events = first.slice()
  let page = first
  while (page.length >= provider.limit && page.length > 0) {
    page = await provider.getEventsFor(stream, id, page[page.length - 1].position)
    for (const ev of page) events.push(ev)
  }
  return events
}

/**
 * @param {any} opts
 * @param {string} fn
 */
function checkAggregateOptions(opts, fn) {
  if (!isPlainObject(opts)) {
    throw codedError('INVALID_ARGUMENT', `${fn}: expected an options object`, TypeError)
  }
  if (typeof opts.stream !== 'string' || opts.stream === '') {
    throw codedError('INVALID_ARGUMENT', `${fn}: "stream" must be a non-empty string`, TypeError)
  }
  if (typeof opts.fold !== 'function') {
    throw codedError('INVALID_ARGUMENT', `${fn}: "fold" must be a function (event, aggregate, meta) => changes`, TypeError)
  }
  checkCacheSize(opts.cacheSize, fn)
}

/**
 * `cacheSize` bounds the `useCache` cache to that many aggregates (the least
 * recently loaded one leaves first). Absent: no bound, as in evtstore. It is
 * checked even without `useCache`, so a typo never passes silently.
 * @param {any} cacheSize
 * @param {string} fn
 */
function checkCacheSize(cacheSize, fn) {
  if (cacheSize !== undefined) assertPositiveInteger(cacheSize, `${fn}: "cacheSize" (the most aggregates useCache keeps)`)
}

/**
 * Describes an aggregate: its stream, how to create an empty one and how an
 * event changes it.
 * @param {{ stream: string, create: () => object, fold: Function, version?: string, persistAggregate?: boolean }} opts
 */
function createAggregate(opts) {
  checkAggregateOptions(opts, 'createAggregate')
  if (typeof opts.create !== 'function') {
    throw codedError('INVALID_ARGUMENT', 'createAggregate: "create" must be a function returning a new aggregate', TypeError)
  }
  return {
    stream: opts.stream,
    aggregate: opts.create,
    fold: opts.fold,
    version: opts.version,
    persistAggregate: !!opts.persistAggregate,
  }
}

/**
 * The loading part shared by provided and persisted aggregates.
 * @param {any} opts StorableAggregate & { provider, useCache?, cacheSize? }
 */
function createLoader(opts) {
  const { stream, fold } = opts
  const create = opts.aggregate
  if (typeof create !== 'function') {
    throw codedError('INVALID_ARGUMENT', 'aggregate: "aggregate" must be a function returning a new aggregate', TypeError)
  }
  const useCache = !!opts.useCache
  // the most aggregates the cache keeps; Infinity: every one (evtstore's behaviour)
  const maxCached = opts.cacheSize === undefined ? Infinity : opts.cacheSize
  const bounded = maxCached !== Infinity
  /**
   * Per aggregate id: the last folded aggregate and the position of its last
   * event. A Map iterates in insertion order, so when bounded, an entry is
   * moved to the end on every use and the first one is the least recently
   * used: the one to drop.
   * @type {Map<string, { aggregate: any, position: any }>}
   */
  const cache = new Map()
  // One long-lived iterator finds the entry to drop. Every entry before it was
  // dropped or moved to the end, so its next key is the least recently used
  // one. (A new iterator per eviction would step over the holes that deleted
  // entries leave at the front of the Map's table until V8 compacts it: with
  // 10,000 entries that made each eviction ~20 times slower.)
  let evictFrom = cache.keys()

  /**
   * @param {string} id
   * @param {{ aggregate: any, position: any }} entry
   */
  function remember(id, entry) {
    if (!bounded) {
      cache.set(id, entry)
      return
    }
    cache.delete(id)
    cache.set(id, entry)
    while (cache.size > maxCached) {
      let oldest = evictFrom.next()
      if (oldest.done) {
        // a finished iterator stays finished: start a new one
        evictFrom = cache.keys()
        oldest = evictFrom.next()
      }
      cache.delete(/** @type {string} */ (oldest.value))
    }
  }

  /**
   * @param {any} prev
   * @param {any} ev a StoreEvent
   */
  function toNextAggregate(prev, ev) {
    const changes = fold(ev.event, prev, toMeta(ev))
    // two assignments after the spread: V8 builds this about twice as fast
    // as one literal with the extra keys, with the same keys in the same order
    const next = { ...prev, ...changes }
    next.version = ev.version
    next.aggregateId = ev.aggregateId
    return next
  }

  /** @param {string} id */
  function fresh(id) {
    const aggregate = copyOf(create())
    aggregate.aggregateId = id
    aggregate.version = 0
    return aggregate
  }

  /** @param {string} id */
  async function foldAll(id) {
    // no await (and no turn of the event loop) when the provider is no Promise
    const provider = isThenable(opts.provider) ? await opts.provider : opts.provider
    const cached = useCache ? cache.get(id) : undefined
    const read = getAllEventsFor(provider, stream, id, cached ? cached.position : undefined)
    // the in-memory provider answers without a Promise: no turn of the event loop
    const events = Array.isArray(read) ? read : await read
    if (cached && events.length === 0) {
      // a use: the entry becomes the most recent one (unless evicted meanwhile)
      if (bounded && cache.get(id) === cached) remember(id, cached)
      return cached.aggregate
    }
    let aggregate = cached ? cached.aggregate : fresh(id)
    for (let i = 0; i < events.length; i++) aggregate = toNextAggregate(aggregate, events[i])
    if (useCache && events.length > 0) {
      remember(id, { aggregate, position: events[events.length - 1].position })
    }
    return aggregate
  }

  return { toNextAggregate, fresh, foldAll }
}

/**
 * An aggregate bound to a provider: getAggregate(id) folds its events.
 * @param {any} opts StorableAggregate & { provider, useCache?, cacheSize? }
 */
function createProvidedAggregate(opts) {
  checkAggregateOptions(opts, 'createProvidedAggregate')
  const { toNextAggregate, foldAll } = createLoader(opts)
  return {
    stream: opts.stream,
    getAggregate: foldAll,
    toNextAggregate,
    provider: opts.provider,
  }
}

/**
 * An aggregate whose events carry a copy of the aggregate after them
 * (`event.__persisted`, tagged with `version`): getAggregate(id) reads the
 * last event only, and folds everything when the copy is missing or was made
 * by another version of the fold.
 * @param {any} opts StorableAggregate & { provider, useCache?, cacheSize? }
 */
function createPersistedAggregate(opts) {
  checkAggregateOptions(opts, 'createPersistedAggregate')
  const { toNextAggregate, fresh, foldAll } = createLoader(opts)

  /** @param {string} id */
  async function getAggregate(id) {
    // no await (and no turn of the event loop) when the provider is no Promise
    const provider = isThenable(opts.provider) ? await opts.provider : opts.provider
    const last = await provider.getLastEventFor(opts.stream, id)
    if (!last) return fresh(id)
    const persisted = last.event && last.event.__persisted
    if (!isPlainObject(persisted) || persisted.__pv !== opts.version) return foldAll(id)
    const aggregate = copyOf(persisted)
    aggregate.aggregateId = last.aggregateId
    aggregate.version = last.version
    return aggregate
  }

  return {
    stream: opts.stream,
    getAggregate,
    toNextAggregate,
    provider: opts.provider,
    version: opts.version,
    persistAggregate: !!opts.persistAggregate,
  }
}

module.exports = {
  createAggregate,
  createProvidedAggregate,
  createPersistedAggregate,
  getAllEventsFor,
  checkCacheSize,
}
