'use strict'

const { loadNative } = require('../lib/native')
const { fromNative, codedError, VersionError } = require('../lib/errors')
const {
  NATIVE,
  assertEvent,
  assertName,
  assertStreams,
  assertNonNegativeInteger,
  readLimit,
  isPlainObject,
  SYNC_MEMORY,
} = require('../lib/util')
const { createEvents, readAppend, appendJson, toMillis, READ_FROM_START } = require('../lib/native-provider')

/**
 * An in-memory provider. The Rust core keeps the index (streams, aggregates,
 * versions, positions), checks versions and wakes handlers; the StoreEvents
 * stay here as JavaScript objects, one per position, so a read costs a
 * lookup instead of a JSON round trip.
 *
 * Like evtstore's memory provider, reads (and append) hand out the stored
 * StoreEvent objects: treat them as read-only. An append stores a JSON copy
 * of the events it is given, so later changes to the caller's objects do not
 * reach the store.
 *
 * @param {any[]} [initEvents] StoreEvents to start with
 * @param {Function} [onError] called when a started handler fails
 */
function createProvider(initEvents, onError) {
  const { MemoryStore } = loadNative()
  const store = new MemoryStore()
  /** The stored StoreEvents; index = position - 1. @type {any[]} */
  const records = []

  /** @param {ArrayLike<number> | null} positions null for none */
  function toStoreEvents(positions) {
    if (positions === null) return []
    const out = new Array(positions.length)
    for (let i = 0; i < positions.length; i++) out[i] = records[positions[i] - 1]
    return out
  }

  /** @template T @param {() => T} call @returns {T} */
  function native(call) {
    try {
      return call()
    } catch (err) {
      throw fromNative(err)
    }
  }

  /**
   * Takes `count` versions from `version` on in the index and returns the
   * position of the first; a VersionError when one of them is taken.
   * @param {string} stream
   * @param {string} aggregateId
   * @param {number} version
   * @param {number} count
   */
  function reserve(stream, aggregateId, version, count) {
    let first
    try {
      first = store.appendVersions(stream, aggregateId, version, count)
    } catch (err) {
      throw fromNative(err)
    }
    if (first < 0) {
      throw new VersionError(
        `on stream "${stream}", aggregate "${aggregateId}": version ${-first} already exists; ` +
          'nothing was stored, reload the aggregate and retry the command'
      )
    }
    if (first !== records.length + 1) {
      throw codedError('INTERNAL', `memory provider: the index is at position ${first - 1} but ${records.length} payloads are kept`)
    }
    return first
  }

  /**
   * Stores JSON copies of `payloads` (validated objects) with their
   * timestamps and returns the stored StoreEvents.
   * @param {string} stream
   * @param {string} aggregateId
   * @param {number} version
   * @param {any[]} payloads
   * @param {number[]} timestamps
   * @param {string} where
   */
  function storeCopies(stream, aggregateId, version, payloads, timestamps, where) {
    const copies = JSON.parse(appendJson(payloads, () => payloads, where))
    // a toJSON() may have turned an event into something else
    for (let i = 0; i < copies.length; i++) assertEvent(copies[i], where)
    const first = reserve(stream, aggregateId, version, copies.length)
    const stored = new Array(copies.length)
    for (let i = 0; i < copies.length; i++) {
      stored[i] = {
        stream,
        aggregateId,
        version: version + i,
        position: first + i,
        timestamp: new Date(timestamps[i]),
        event: copies[i],
      }
      records.push(stored[i])
    }
    return stored
  }

  /**
   * Stores initial events as they are given, like evtstore (which keeps the
   * initEvents array itself): no JSON copy, and a given StoreEvent that
   * already says what the store would (its version, position and a valid
   * Date timestamp) becomes the stored object. A large preload then leaves no
   * second set of objects for the garbage collector to trace.
   * @param {string} stream
   * @param {string} aggregateId
   * @param {number} version
   * @param {any[]} given the initial StoreEvents
   * @param {number[]} timestamps
   * @param {string} where
   */
  function storeInitial(stream, aggregateId, version, given, timestamps, where) {
    const payloads = new Array(given.length)
    for (let i = 0; i < given.length; i++) payloads[i] = given[i].event
    appendJson(payloads, () => payloads, where) // refuses what JSON cannot hold
    const first = reserve(stream, aggregateId, version, given.length)
    for (let i = 0; i < given.length; i++) {
      const ev = given[i]
      const position = first + i
      // the time stored is timestamps[i] (now, for a missing or invalid one)
      const keep =
        ev.version === version + i &&
        ev.position === position &&
        ev.timestamp instanceof Date &&
        ev.timestamp.getTime() === timestamps[i]
      records.push(
        keep
          ? ev
          : { stream, aggregateId, version: version + i, position, timestamp: new Date(timestamps[i]), event: ev.event }
      )
    }
  }

  /**
   * getEventsFor without the Promise (the facade's fast path, see SYNC_MEMORY).
   * @param {string} stream
   * @param {string} aggregateId
   * @param {number} [fromPosition]
   */
  function eventsFor(stream, aggregateId, fromPosition) {
    assertName(stream, 'the stream name', 'getEventsFor')
    assertName(aggregateId, 'the aggregate id', 'getEventsFor')
    if (fromPosition != null) {
      assertNonNegativeInteger(fromPosition, 'getEventsFor: the position to read after', READ_FROM_START)
    }
    let positions
    try {
      positions = store.positionsFor(stream, aggregateId, fromPosition == null ? undefined : fromPosition)
    } catch (err) {
      throw fromNative(err)
    }
    return toStoreEvents(positions)
  }

  /**
   * append without the Promise (the facade's fast path, see SYNC_MEMORY).
   * @param {string} stream
   * @param {string} aggregateId
   * @param {number} version
   * @param {any[]} events
   */
  function appendEvents(stream, aggregateId, version, events) {
    const { where, payloads, timestamps } = readAppend(stream, aggregateId, version, events)
    if (payloads.length === 0) return []
    return storeCopies(stream, aggregateId, version, payloads, timestamps, where)
  }

  const provider = {
    driver: 'memory',
    onError: onError || (() => {}),
    /** @type {number | undefined} */
    limit: undefined,

    /** @param {string} bookmark */
    async getPosition(bookmark) {
      assertName(bookmark, 'the bookmark name', 'getPosition')
      return native(() => store.getBookmark(bookmark))
    },

    /**
     * @param {string} bookmark
     * @param {number} position
     */
    async setPosition(bookmark, position) {
      assertName(bookmark, 'the bookmark name', 'setPosition')
      assertNonNegativeInteger(position, 'setPosition: the position', 'the position of the last event handled, 0 for none')
      native(() => store.setBookmark(bookmark, position))
    },

    /**
     * @param {string | string[]} stream
     * @param {number} position
     * @param {number} [limit]
     */
    async getEventsFrom(stream, position, limit) {
      const streams = assertStreams(stream, 'getEventsFrom')
      if (position != null) assertNonNegativeInteger(position, 'getEventsFrom: the position to read after', READ_FROM_START)
      const lim = readLimit(limit, provider.limit, 'getEventsFrom')
      const positions = native(() => store.positionsFrom(streams, position == null ? 0 : position, lim))
      return toStoreEvents(positions)
    },

    /**
     * @param {string} stream
     * @param {string} aggregateId
     * @param {number} [fromPosition]
     */
    async getEventsFor(stream, aggregateId, fromPosition) {
      return eventsFor(stream, aggregateId, fromPosition)
    },

    /**
     * @param {string | string[]} stream
     * @param {string} [aggregateId]
     */
    async getLastEventFor(stream, aggregateId) {
      const streams = assertStreams(stream, 'getLastEventFor')
      if (aggregateId) assertName(aggregateId, 'the aggregate id', 'getLastEventFor')
      const position = native(() => store.lastPosition(streams, aggregateId ? aggregateId : undefined))
      return position > 0 ? toStoreEvents([position])[0] : undefined
    },

    createEvents,

    /**
     * Stores events atomically with versions version, version + 1, ...
     * Accepts StoreEvents (from createEvents) or bare events.
     * @param {string} stream
     * @param {string} aggregateId
     * @param {number} version
     * @param {any[]} events
     */
    async append(stream, aggregateId, version, events) {
      return appendEvents(stream, aggregateId, version, events)
    },

    /** Resolves at once: nothing to open. */
    ready: Promise.resolve(),

    /** Nothing to release. */
    async close() {},
  }

  if (initEvents) preload(initEvents, storeInitial)

  // enumerable: a wrapper made with { ...provider, onError } keeps the native wake-ups
  Object.defineProperty(provider, NATIVE, { value: store, enumerable: true })
  // not enumerable: a wrapper made with { ...provider } goes through its own
  // methods; the facade also checks that these methods were not replaced
  Object.defineProperty(provider, SYNC_MEMORY, {
    value: { getEventsFor: provider.getEventsFor, append: provider.append, eventsFor, appendEvents },
  })
  return provider
}

/**
 * Stores `initEvents` in their order: consecutive events of one aggregate
 * with consecutive versions go in one append. Versions missing on an event
 * continue the aggregate's count.
 * @param {any[]} initEvents
 * @param {Function} append the provider's internal append of initial events
 */
function preload(initEvents, append) {
  if (!Array.isArray(initEvents)) {
    throw codedError('INVALID_ARGUMENT', 'memory provider: initEvents must be an array of StoreEvents', TypeError)
  }
  const where = 'memory provider initial event'
  /** @type {Map<string, number>} */
  const versions = new Map()
  /** @type {any} */
  let batch = null

  const flush = () => {
    if (!batch) return
    append(batch.stream, batch.aggregateId, batch.first, batch.given, batch.timestamps, where)
    batch = null
  }

  for (const ev of initEvents) {
    if (!isPlainObject(ev) || typeof ev.stream !== 'string' || typeof ev.aggregateId !== 'string') {
      throw codedError(
        'INVALID_EVENT',
        'memory provider: each initial event must be a StoreEvent with a string stream and aggregateId',
        TypeError
      )
    }
    assertName(ev.stream, 'the stream name', where)
    assertName(ev.aggregateId, 'the aggregate id', where)
    assertEvent(ev.event, where)
    // names hold no NUL (assertName): the pair is one string
    const key = `${ev.stream}\u0000${ev.aggregateId}`
    const version = Number.isSafeInteger(ev.version) && ev.version > 0 ? ev.version : (versions.get(key) || 0) + 1
    versions.set(key, Math.max(version, versions.get(key) || 0))
    const ms = toMillis(ev.timestamp === undefined ? Date.now() : ev.timestamp)
    const timestamp = Number.isFinite(ms) ? ms : Date.now()

    if (batch && batch.key === key && batch.first + batch.given.length === version) {
      batch.given.push(ev)
      batch.timestamps.push(timestamp)
      continue
    }
    flush()
    batch = { key, stream: ev.stream, aggregateId: ev.aggregateId, first: version, given: [ev], timestamps: [timestamp] }
  }
  flush()
}

module.exports = { createProvider }
