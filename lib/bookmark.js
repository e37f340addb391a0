'use strict'

const { codedError } = require('./errors')
const { MemoryBookmark } = require('./util')

/**
 * A bookmark stored by a provider, as an object a handler can be given.
 * @param {any} provider a Provider (or a Promise of one)
 * @param {string} name
 */
function createBookmark(provider, name) {
  if (!provider || (typeof provider !== 'object' && typeof provider !== 'function')) {
    throw codedError('INVALID_ARGUMENT', 'createBookmark: the first argument must be a provider', TypeError)
  }
  if (typeof name !== 'string' || name === '') {
    throw codedError('INVALID_ARGUMENT', 'createBookmark: the bookmark name must be a non-empty string', TypeError)
  }
  return {
    name,
    getPosition: async () => (await provider).getPosition(name),
    setPosition: async (/** @type {any} */ position) => (await provider).setPosition(name, position),
  }
}

module.exports = { createBookmark, MemoryBookmark }
