'use strict'

const { fromNative, codedError } = require('./errors')
const {
  NATIVE,
  assertEvent,
  assertName,
  assertStreams,
  assertNonNegativeInteger,
  readLimit,
  assertNoLoneSurrogate,
  isPlainObject,
  quiet,
} = require('./util')

/**
 * A read of the core -> StoreEvent objects with Dates. Every engine answers
 * `{ json, numbers }`: `json` holds columns (`{"e":[events],"s":[streams],
 * "a":[ids]}`), which parse about twice as fast as one object per event, and
 * `numbers` the version, position and timestamp (epoch ms) of each event in
 * turn, NaN for NULL. A read of one aggregate comes without "s" and "a": its
 * stream and id are the ones asked for, given here.
 * @param {import('./native').EventBatch} read
 * @param {string} [stream]
 * @param {string} [aggregateId]
 */
function parseEvents(read, stream, aggregateId) {
  const { s, a, e } = JSON.parse(read.json)
  const numbers = read.numbers
  const out = new Array(e.length)
  for (let i = 0, k = 0; i < e.length; i++, k += 3) {
    const version = numbers[k]
    const ms = numbers[k + 2]
    out[i] = {
      stream: s === undefined ? stream : s[i],
      aggregateId: a === undefined ? aggregateId : a[i],
      // NaN (a NULL) is the only number not equal to itself
      version: version === version ? version : null,
      position: numbers[k + 1],
      timestamp: new Date(ms === ms ? ms : 0),
      event: e[i],
    }
  }
  return out
}

/** @param {string | object | null | undefined} json */
function parseEvent(json) {
  if (json === null || json === undefined) return undefined
  const ev = typeof json === 'string' ? JSON.parse(json) : json
  if (ev === null) return undefined
  ev.timestamp = new Date(ev.timestamp)
  return ev
}

/** What to pass as the position of a read. */
const READ_FROM_START = "an event's position, or 0 or null to read from the start"

/** @param {any} ts */
function toMillis(ts) {
  if (ts instanceof Date) return ts.getTime()
  if (typeof ts === 'number') return ts
  if (typeof ts === 'string') return Date.parse(ts)
  return NaN
}

/**
 * The arguments of `append`, checked, and its events unwrapped: bare events
 * or StoreEvents (from createEvents), whose timestamps are kept.
 * @param {string} stream
 * @param {string} aggregateId
 * @param {number} version
 * @param {any[]} events
 * @returns {{ where: string, payloads: any[], timestamps: number[] }}
 */
function readAppend(stream, aggregateId, version, events) {
  assertName(stream, 'the stream name', 'append')
  assertName(aggregateId, 'the aggregate id', 'append')
  assertNonNegativeInteger(version, 'append: the version', 'the version of the first event')
  if (!Array.isArray(events)) {
    throw codedError('INVALID_EVENT', 'append: expected an array of events', TypeError)
  }
  const where = `append to ${stream}/${aggregateId}`
  const now = Date.now()
  const payloads = new Array(events.length)
  const timestamps = new Array(events.length)
  for (let i = 0; i < events.length; i++) {
    const item = events[i]
    let event = item
    let ms = NaN
    // a StoreEvent: its event is checked (and named in a refusal), not the wrapper
    if (isPlainObject(item) && typeof item.type !== 'string' && 'event' in item) {
      event = item.event
      ms = toMillis(item.timestamp)
    }
    assertEvent(event, where)
    payloads[i] = event
    timestamps[i] = Number.isFinite(ms) ? ms : now
  }
  return { where, payloads, timestamps }
}

/**
 * JSON text of what an append stores, or INVALID_EVENT (a BigInt, a cycle, a
 * lone surrogate) before anything is stored.
 * @param {any} value
 * @param {() => any[]} payloads the events, to name the one at fault
 * @param {string} where
 */
function appendJson(value, payloads, where) {
  let json
  try {
    json = JSON.stringify(value)
  } catch (cause) {
    const err = codedError('INVALID_EVENT', `${where}: an event cannot be stored as JSON (${cause && /** @type {any} */ (cause).message})`, TypeError)
    err.cause = cause
    throw err
  }
  assertNoLoneSurrogate(json, payloads, where)
  return json
}

/**
 * The StoreEvents evtstore's `createEvents` builds: not stored yet, so their
 * position is 0 (what evtstore's memory and knex providers put there).
 * @param {string} stream
 * @param {string} aggregateId
 * @param {number} version
 * @param {any[]} events
 */
function createEvents(stream, aggregateId, version, events) {
  const timestamp = Date.now()
  const out = new Array(events.length)
  for (let i = 0; i < events.length; i++) {
    out[i] = {
      stream,
      aggregateId,
      version: version + i,
      position: 0,
      timestamp: new Date(timestamp),
      event: events[i],
    }
  }
  return out
}

/**
 * Wraps a native `Store` (every engine's, the in-memory fast path aside) into
 * an evtstore `Provider`.
 *
 * @param {object} opts
 * @param {string} opts.driver
 * @param {Promise<import('./native').Store>} opts.store the native store, once open
 * @param {number} [opts.limit]
 * @param {Function} [opts.onError]
 * @param {() => Promise<void> | void} [opts.close] releases the store
 * @param {(err: any) => any} [opts.explain] adds context to an error of the store
 */
function createNativeProvider(opts) {
  const explain = opts.explain
  /** @param {any} err */
  const fail = (err) => (explain ? explain(fromNative(err)) : fromNative(err))
  const storeRef = quiet(Promise.resolve(opts.store))
  const ready = quiet(storeRef.then(() => undefined))
  let closed = false

  const store = () => storeRef

  const provider = {
    driver: opts.driver,
    onError: opts.onError || (() => {}),
    limit: opts.limit,

    /** @param {string} bookmark */
    async getPosition(bookmark) {
      assertName(bookmark, 'the bookmark name', 'getPosition')
      const s = await store()
      try {
        return await s.getBookmark(bookmark)
      } catch (err) {
        throw fail(err)
      }
    },

    /**
     * @param {string} bookmark
     * @param {number} position
     */
    async setPosition(bookmark, position) {
      assertName(bookmark, 'the bookmark name', 'setPosition')
      assertNonNegativeInteger(position, 'setPosition: the position', 'the position of the last event handled, 0 for none')
      const s = await store()
      try {
        await s.setBookmark(bookmark, position)
      } catch (err) {
        throw fail(err)
      }
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
      const s = await store()
      let read
      try {
        read = await s.eventsFrom(streams, position == null ? 0 : position, lim)
      } catch (err) {
        throw fail(err)
      }
      return parseEvents(read)
    },

    /**
     * @param {string} stream
     * @param {string} aggregateId
     * @param {number} [fromPosition]
     */
    async getEventsFor(stream, aggregateId, fromPosition) {
      assertName(stream, 'the stream name', 'getEventsFor')
      assertName(aggregateId, 'the aggregate id', 'getEventsFor')
      if (fromPosition != null) {
        assertNonNegativeInteger(fromPosition, 'getEventsFor: the position to read after', READ_FROM_START)
      }
      const s = await store()
      let read
      try {
        read = await s.eventsFor(stream, aggregateId, fromPosition == null ? undefined : fromPosition)
      } catch (err) {
        throw fail(err)
      }
      return parseEvents(read, stream, aggregateId)
    },

    /**
     * @param {string | string[]} stream
     * @param {string} [aggregateId]
     */
    async getLastEventFor(stream, aggregateId) {
      const streams = assertStreams(stream, 'getLastEventFor')
      if (aggregateId) assertName(aggregateId, 'the aggregate id', 'getLastEventFor')
      const s = await store()
      let json
      try {
        json = await s.lastEvent(streams, aggregateId ? aggregateId : undefined)
      } catch (err) {
        throw fail(err)
      }
      return parseEvent(json)
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
      const { where, payloads, timestamps } = readAppend(stream, aggregateId, version, events)
      if (payloads.length === 0) return []
      const items = new Array(payloads.length)
      for (let i = 0; i < payloads.length; i++) items[i] = { timestamp: timestamps[i], event: payloads[i] }
      const json = appendJson(items, () => payloads, where)
      const s = await store()
      let positions
      try {
        positions = await s.append(stream, aggregateId, version, json)
      } catch (err) {
        throw fail(err)
      }
      const stored = new Array(items.length)
      for (let i = 0; i < items.length; i++) {
        stored[i] = {
          stream,
          aggregateId,
          version: version + i,
          position: positions[i],
          timestamp: new Date(timestamps[i]),
          event: payloads[i],
        }
      }
      return stored
    },

    /**
     * Every bookmark with its position, lag and lease (owner, token,
     * expiry): what `npx evtstore-rs status <url>` prints.
     */
    async status() {
      const s = await store()
      try {
        return await require('./status').statusOf(s)
      } catch (err) {
        throw fail(err)
      }
    },

    /** Resolves when the store is open; rejects with the reason it could not be opened. */
    ready,

    /** Releases the native store (a shared store is closed with its last provider). */
    async close() {
      if (closed) return
      closed = true
      if (opts.close) await opts.close()
    },
  }

  // enumerable: a wrapper made with { ...provider, onError } keeps the native wake-ups
  Object.defineProperty(provider, NATIVE, { value: storeRef, enumerable: true })
  return provider
}

module.exports = {
  createNativeProvider,
  createEvents,
  parseEvents,
  parseEvent,
  readAppend,
  appendJson,
  toMillis,
  READ_FROM_START,
}
