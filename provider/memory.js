'use strict'

const { loadNative } = require('../lib/native')
const { createNativeProvider } = require('../lib/native-provider')
const { fromNative, codedError } = require('../lib/errors')
const { assertEvent, isPlainObject } = require('../lib/util')

/**
 * Stores `initEvents` in their order: consecutive events of one aggregate
 * with consecutive versions go in one append. Versions missing on an event
 * continue the aggregate's count.
 * @param {any} store a native MemoryStore
 * @param {any[]} initEvents
 */
function preload(store, initEvents) {
  if (!Array.isArray(initEvents)) {
    throw codedError('INVALID_ARGUMENT', 'memory provider: initEvents must be an array of StoreEvents', TypeError)
  }
  /** @type {Map<string, number>} */
  const versions = new Map()
  let batch = null

  const flush = () => {
    if (!batch) return
    try {
      store.append(batch.stream, batch.aggregateId, batch.first, JSON.stringify(batch.items))
    } catch (err) {
      throw fromNative(err)
    }
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
    assertEvent(ev.event, 'memory provider initial event')
    const key = JSON.stringify([ev.stream, ev.aggregateId])
    const version = Number.isSafeInteger(ev.version) && ev.version > 0 ? ev.version : (versions.get(key) || 0) + 1
    versions.set(key, Math.max(version, versions.get(key) || 0))
    const ts = ev.timestamp instanceof Date ? ev.timestamp.getTime() : new Date(ev.timestamp || Date.now()).getTime()
    const item = { timestamp: Number.isFinite(ts) ? ts : Date.now(), event: ev.event }

    if (batch && batch.key === key && batch.first + batch.items.length === version) {
      batch.items.push(item)
      continue
    }
    flush()
    batch = { key, stream: ev.stream, aggregateId: ev.aggregateId, first: version, items: [item] }
  }
  flush()
}

/**
 * An in-memory provider backed by the Rust core.
 * @param {any[]} [initEvents] StoreEvents to start with
 * @param {Function} [onError] called when a started handler fails
 */
function createProvider(initEvents, onError) {
  const { MemoryStore } = loadNative()
  const store = new MemoryStore()
  if (initEvents) preload(store, initEvents)
  return createNativeProvider({ driver: 'memory', store, onError: onError || (() => {}) })
}

module.exports = { createProvider }
