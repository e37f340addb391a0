'use strict'

/**
 * In-process wake-ups for handlers on plain JavaScript providers: this
 * package's commands call notify(provider) after an append, and a handler
 * that found nothing to read waits until the next notify or its poll timer.
 *
 * A sequence number per provider makes the wait race-free: a handler reads
 * seq(provider) BEFORE reading events and then waits for it to change.
 */

/** @type {WeakMap<object, { seq: number, waiters: Set<() => void> }>} */
const registry = new WeakMap()

/** @param {object} provider */
function entry(provider) {
  let e = registry.get(provider)
  if (!e) {
    e = { seq: 0, waiters: new Set() }
    registry.set(provider, e)
  }
  return e
}

/** @param {object} provider */
function seq(provider) {
  return entry(provider).seq
}

/** @param {any} provider */
function notify(provider) {
  if (!provider || (typeof provider !== 'object' && typeof provider !== 'function')) return
  const e = registry.get(provider)
  if (!e) return
  e.seq++
  if (e.waiters.size === 0) return
  const waiters = [...e.waiters]
  e.waiters.clear()
  for (const wake of waiters) wake()
}

/**
 * Waits until notify(provider) moves the sequence past `knownSeq`, or
 * `timeoutMs` passes. The returned `cancel()` resolves the wait at once.
 * The pending timer keeps Node alive (only started handlers wait).
 * @param {object} provider
 * @param {number} knownSeq
 * @param {number} timeoutMs
 * @returns {{ promise: Promise<'changed' | 'timeout' | 'cancelled'>, cancel: () => void }}
 */
function wait(provider, knownSeq, timeoutMs) {
  const e = entry(provider)
  if (e.seq !== knownSeq) return { promise: Promise.resolve('changed'), cancel() {} }
  /** @type {(why: 'changed' | 'timeout' | 'cancelled') => void} */
  let settle
  /** @type {NodeJS.Timeout | undefined} */
  let timer
  const promise = new Promise((resolve) => {
    settle = (/** @type {'changed' | 'timeout' | 'cancelled'} */ why) => {
      clearTimeout(timer)
      e.waiters.delete(onChange)
      resolve(why)
    }
  })
  const onChange = () => settle('changed')
  e.waiters.add(onChange)
  timer = setTimeout(() => settle('timeout'), timeoutMs)
  return { promise, cancel: () => settle('cancelled') }
}

module.exports = { notify, seq, wait }
