'use strict'
// What every provider entry on a native engine does once its adapter has read
// the user's options into a StoreTarget: check the provider options, and
// build an evtstore Provider on the shared native store.

const { loadNative } = require('../native')
const { createNativeProvider } = require('../native-provider')
const { acquire } = require('./shared-stores')
const { codedError } = require('../errors')
const { assertPositiveInteger, describe } = require('../util')

/**
 * Checks `limit` and `onError`, the options every provider takes.
 * @param {any} opts
 * @param {string} what e.g. 'sqlite createProvider'
 */
function checkProviderOptions(opts, what) {
  if (opts.limit !== undefined) assertPositiveInteger(opts.limit, `${what}: limit`)
  if (opts.onError !== undefined && typeof opts.onError !== 'function') {
    throw codedError('INVALID_ARGUMENT', `${what}: onError must be a function, got ${describe(opts.onError)}`, TypeError)
  }
}

/**
 * A Provider on the shared native store of `target`; closing it releases the store.
 * @param {import('./shared-stores').StoreTarget | Promise<import('./shared-stores').StoreTarget>} target
 * @param {{ driver: string, limit?: number, onError?: Function }} opts
 */
function providerOn(target, opts) {
  // a missing or outdated addon is refused at once, as createProvider is synchronous
  loadNative()
  const held = acquire(target)
  /** @type {((err: any) => any) | undefined} */
  let explain
  held.target.then((t) => (explain = t.explain)).catch(() => {})
  return createNativeProvider({
    driver: opts.driver,
    store: held.store,
    limit: opts.limit,
    onError: opts.onError,
    close: held.release,
    explain: (err) => (explain ? explain(err) : err),
  })
}

module.exports = { checkProviderOptions, providerOn }
