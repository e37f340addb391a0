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
 * An Error with a stable `code`; errors of the core also say which `engine`
 * raised them and whether they are `retryable` (decided in Rust).
 * @typedef {Error & { code: string, engine?: string, retryable?: boolean, cause?: unknown }} CodedError
 */

/**
 * Builds an Error with a stable `code`.
 * @param {string} code
 * @param {string} message
 * @param {ErrorConstructor} [Kind]
 * @returns {CodedError}
 */
function codedError(code, message, Kind = Error) {
  const err = /** @type {CodedError} */ (new Kind(message))
  err.code = code
  return err
}

const CONFLICT_PREFIX = /^\s*version conflict(?: error)?\s*[:-]?\s*/i

/**
 * Turns an error thrown by the native core into what the public API promises:
 * a version conflict becomes a `VersionError` (the core's error as its
 * `cause`); every other error is returned as it is, with the `code`, `engine`
 * and `retryable` the core gave it.
 * @param {any} err
 */
function fromNative(err) {
  if (err && err.code === 'VERSION_CONFLICT' && !(err instanceof VersionError)) {
    const detail = typeof err.message === 'string' ? err.message.replace(CONFLICT_PREFIX, '') : ''
    const conflict = new VersionError(detail || undefined)
    conflict.cause = err
    return conflict
  }
  return err
}

module.exports = { CommandError, VersionError, codedError, fromNative }
