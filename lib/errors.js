'use strict'

/**
 * An error a command handler throws to refuse a command. `msg` repeats the
 * message and `code` is an optional machine-readable reason.
 */
class CommandError extends Error {
  /**
   * @param {string} msg
   * @param {string} [code]
   */
  constructor(msg, code) {
    super(msg)
    this.msg = msg
    this.code = code
  }
}
Object.defineProperty(CommandError.prototype, 'name', {
  value: 'CommandError',
  writable: true,
  configurable: true,
})

/**
 * Another writer appended to the same aggregate first: none of the events of
 * the failed append were stored.
 */
class VersionError extends CommandError {
  /** @param {string} [detail] */
  constructor(detail) {
    super(detail ? `Version conflict error: ${detail}` : 'Version conflict error', 'VERSION_CONFLICT')
  }
}
Object.defineProperty(VersionError.prototype, 'name', {
  value: 'VersionError',
  writable: true,
  configurable: true,
})

/**
 * Builds an Error with a stable `code`.
 * @param {string} code
 * @param {string} message
 * @param {ErrorConstructor} [Kind]
 */
function codedError(code, message, Kind = Error) {
  const err = new Kind(message)
  err.code = code
  return err
}

const CONFLICT_PREFIX = /^\s*version conflict(?: error)?\s*[:-]?\s*/i

/**
 * Codes of faults that can pass by themselves (a server that is down or
 * restarting, a broken connection, a lock held by another process, a pool
 * that stayed busy): the same call may succeed when it is made again later.
 */
const RETRYABLE_CODES = new Set(['CANNOT_CONNECT', 'CONNECTION_LOST', 'TIMEOUT', 'DATABASE_BUSY'])
/** A CANNOT_CONNECT that retrying will not cure: the TLS settings or certificates are wrong. */
const TLS_FAILURE = /\bTLS failed\b/

/**
 * Marks an error of the core `retryable: true` when its code says the fault
 * may pass by itself.
 * @param {any} err
 */
function markRetryable(err) {
  if (!err || typeof err !== 'object' || !RETRYABLE_CODES.has(err.code) || 'retryable' in err) return
  if (err.code === 'CANNOT_CONNECT' && typeof err.message === 'string' && TLS_FAILURE.test(err.message)) return
  try {
    err.retryable = true
  } catch {
    /* a frozen error keeps its shape */
  }
}

/**
 * Turns an error thrown by the native core into what the public API promises:
 * a version conflict becomes a `VersionError`; every other error keeps its
 * `code` and, for a fault that may pass by itself, gets `retryable: true`.
 * @param {any} err
 */
function fromNative(err) {
  if (err && err.code === 'VERSION_CONFLICT' && !(err instanceof VersionError)) {
    const detail = typeof err.message === 'string' ? err.message.replace(CONFLICT_PREFIX, '') : ''
    const conflict = new VersionError(detail || undefined)
    conflict.cause = err
    return conflict
  }
  markRetryable(err)
  return err
}

module.exports = { CommandError, VersionError, codedError, fromNative }
