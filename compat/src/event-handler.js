'use strict'

// evtstore's src/event-handler: the EventHandler class its domains build
// their handlers on. Here it is a class over this package's handler engine,
// so code that constructs one directly gets the same loop, bookmark batching
// and wake-ups as every other handler of the package.
const { createEngine } = require('../../lib/handler')

class EventHandler {
  /**
   * @param {object} opts { stream, bookmark, provider, hooks?, tailStream?, alwaysTailStream?, continueOnError?, ... }
   * @param {string | string[]} opts.stream
   */
  constructor(opts) {
    const { stream, ...rest } = opts || /** @type {any} */ ({})
    const engine = createEngine({ ...rest, streams: stream })
    this.name = engine.name
    // own arrow properties, as evtstore's: methods work when passed around detached
    /**
     * evtstore keys callbacks by event type alone, whatever the stream.
     * @param {string} type
     * @param {Function} cb
     */
    this.handle = (type, cb) => {
      for (const s of engine.streams) engine.on(s, type, cb)
    }
    /** @param {Record<string, Function>} body */
    this.handlers = (body) => {
      for (const type of Object.keys(body)) {
        if (body[type] !== undefined) this.handle(type, body[type])
      }
    }
    this.start = engine.start
    this.stop = engine.stop
    this.reset = engine.reset
    this.runOnce = engine.runOnce
    this.run = engine.run
    this.getPosition = engine.getPosition
    this.setPosition = engine.setPosition
  }
}

module.exports = { EventHandler }
