'use strict'

// evtstore's provider/util: helpers a provider of one's own may import.
const { toArray, isPositionZero } = require('../lib/util')

/**
 * A function that turns new events into StoreEvents at `position`, versions
 * `version`, `version + 1`, ..., stamped with the current time (what
 * evtstore's providers hand to createEvents).
 * @param {any} position
 */
function createEventsMapper(position) {
  /**
   * @param {string} stream
   * @param {string} aggregateId
   * @param {number} version
   * @param {any[]} events
   */
  return (stream, aggregateId, version, events) =>
    events.map((event, i) => ({
      stream,
      position,
      version: version + i,
      timestamp: new Date(),
      event,
      aggregateId,
    }))
}

module.exports = { toArray, isPositionZero, createEventsMapper }
