'use strict'

const { codedError } = require('./errors')

/** Where a provider built by this package keeps its native store (or a Promise of it). */
const NATIVE = Symbol.for('evtstore-rs.native')

/** The bookmark that lives in memory only. */
const MemoryBookmark = '@@MemoryBookmark'

/** @param {string | string[]} stream */
function toArray(stream) {
  return Array.isArray(stream) ? stream : [stream]
}

/**
 * Whether a stored bookmark position means "never ran". Numbers and the
 * BSON Timestamp shape used by evtstore's MongoDB provider are understood.
 * @param {any} position
 */
function isPositionZero(position) {
  if (position === undefined || position === null) return true
  if (typeof position === 'number' || typeof position === 'bigint') return position == 0
  if (typeof position === 'string') return position === '' || position === '0'
  if (typeof position === 'object') {
    if ('high' in position && 'low' in position) {
      // evtstore's own test: a MongoDB Timestamp of (1, 0) is its "zero"
      return (position.high === 1 || position.high === 0) && position.low === 0
    }
  }
  return false
}

/**
 * The metadata handed to folds and event handlers.
 * @param {any} ev a StoreEvent
 */
function toMeta(ev) {
  const ts = ev.timestamp
  return {
    aggregateId: ev.aggregateId,
    position: ev.position,
    stream: ev.stream,
    timestamp: ts instanceof Date ? ts : new Date(ts),
    version: ev.version,
  }
}

/** @param {any} value */
function isPlainObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Throws INVALID_EVENT unless `event` is an object with a string `type`.
 * @param {any} event
 * @param {string} where
 */
function assertEvent(event, where) {
  if (!isPlainObject(event)) {
    throw codedError(
      'INVALID_EVENT',
      `${where}: an event must be an object with a string "type", got ${describe(event)}`,
      TypeError
    )
  }
  if (typeof event.type !== 'string') {
    throw codedError(
      'INVALID_EVENT',
      `${where}: an event must have a string "type", got type ${describe(event.type)}`,
      TypeError
    )
  }
}

/**
 * Throws INVALID_EVENT when `value` cannot be stored as JSON (a BigInt, a cycle).
 * @param {any} value
 * @param {string} where
 */
function assertJson(value, where) {
  try {
    JSON.stringify(value)
  } catch (cause) {
    const err = codedError(
      'INVALID_EVENT',
      `${where}: an event cannot be stored as JSON (${cause && cause.message})`,
      TypeError
    )
    err.cause = cause
    throw err
  }
}

/** @param {any} value */
function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value)
  if (typeof value === 'object') return 'an object'
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'function') return 'a function'
  return String(value)
}

/**
 * @param {string} code
 * @param {string} message
 */
function invalid(code, message) {
  return codedError(code, message, TypeError)
}

/**
 * @param {any} value
 * @param {string} name
 */
function assertPositiveInteger(value, name) {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw invalid('INVALID_ARGUMENT', `${name} must be a positive integer, got ${describe(value)}`)
  }
}

/**
 * @param {any} value
 * @param {string} name
 */
function assertNonNegativeNumber(value, name) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalid('INVALID_ARGUMENT', `${name} must be a number of milliseconds >= 0, got ${describe(value)}`)
  }
}

/** @param {any} value */
function isThenable(value) {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function'
}

/**
 * A Promise that rejects like `promise` but never counts as an unhandled
 * rejection when nobody awaits it.
 * @template T
 * @param {Promise<T>} promise
 */
function quiet(promise) {
  promise.catch(() => {})
  return promise
}

module.exports = {
  NATIVE,
  MemoryBookmark,
  toArray,
  isPositionZero,
  toMeta,
  isPlainObject,
  assertEvent,
  assertJson,
  describe,
  invalid,
  assertPositiveInteger,
  assertNonNegativeNumber,
  isThenable,
  quiet,
}
