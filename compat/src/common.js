'use strict'

const { toMeta, MemoryBookmark } = require('../../lib/util')
const aggregate = require('../../lib/aggregate')

/**
 * Every stored event of one aggregate after `from` (all when absent), paging
 * through the provider's `limit`. Always a Promise, as in evtstore (the
 * package's own loader may answer the in-memory provider synchronously).
 * @param {any} provider
 * @param {string} stream
 * @param {string} id
 * @param {any} [from]
 */
async function getAllEventsFor(provider, stream, id, from) {
  return aggregate.getAllEventsFor(provider, stream, id, from)
}

module.exports = { toMeta, MemoryBookmark, getAllEventsFor }
