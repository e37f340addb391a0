'use strict'

const { codedError } = require('./errors')
const { assertEvent, assertJson, assertName, findLoneSurrogate, describe, isPlainObject, isThenable, copyOf, NATIVE, SYNC_MEMORY } = require('./util')
const wakeup = require('./wakeup')

/**
 * Defines `name` as an own, enumerable property, whatever the name
 * (`constructor`, `toString`, `__proto__` included).
 * @param {object} target
 * @param {string} name
 * @param {any} value
 */
function defineOwn(target, name, value) {
  Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true })
}

/**
 * The own command names of a handlers object.
 * @param {any} handlers
 * @param {string} fn
 */
function commandNames(handlers, fn) {
  if (!handlers || typeof handlers !== 'object') {
    throw codedError('INVALID_ARGUMENT', `${fn}: expected an object of command handler functions`, TypeError)
  }
  const names = Object.keys(handlers)
  for (const name of names) {
    if (typeof handlers[name] !== 'function') {
      throw codedError(
        'INVALID_ARGUMENT',
        `${fn}: command handler "${name}" must be a function, got ${describe(handlers[name])}`,
        TypeError
      )
    }
  }
  return names
}

/** @param {any} id */
function checkId(id) {
  assertName(id, 'the aggregate id', 'command')
}

/**
 * Runs one command against a loaded aggregate: calls the handler, stores the
 * events it returns in one atomic append with the versions that follow the
 * aggregate's, and returns the aggregate folded over them.
 *
 * @param {object} target
 * @param {string} target.stream
 * @param {any} target.provider a Provider or a Promise of one
 * @param {(prev: any, ev: any) => any} target.toNextAggregate
 * @param {string} [target.version] persisted-aggregate version tag
 * @param {boolean} [target.persistAggregate]
 * @param {any} handlers
 * @param {string} name
 * @param {string} id
 * @param {any} body
 * @param {any} aggregate
 */
async function execute(target, handlers, name, id, body, aggregate) {
  const cmd = copyOf(body)
  cmd.aggregateId = id
  cmd.type = name
  const result = await handlers[name](cmd, aggregate)
  if (!result) return { ...aggregate }
  const events = Array.isArray(result) ? result : [result]
  if (events.length === 0) return { ...aggregate }
  for (let i = 0; i < events.length; i++) {
    const ev = events[i]
    // the message is only built for an invalid event
    if (!isPlainObject(ev) || typeof ev.type !== 'string') assertEvent(ev, `command "${name}" returned an invalid event`)
  }
  const provider = isThenable(target.provider) ? await target.provider : target.provider
  // a native provider checks both while serialising the append
  if (!provider[NATIVE]) {
    const lone = findLoneSurrogate(events, 'events')
    if (lone) {
      throw codedError(
        'INVALID_EVENT',
        `command "${name}" returned an event that cannot be stored: ${lone} holds a lone surrogate ` +
          '(a UTF-16 half of a pair, U+D800..U+DFFF), which is no Unicode text; nothing was stored',
        TypeError
      )
    }
    assertJson(events, `command "${name}"`)
  }
  const version = aggregate.version + 1
  let storeEvents = provider.createEvents(target.stream, id, version, events)
  const persist = !!(target.persistAggregate && target.version)
  let next = aggregate
  if (persist) {
    const patched = new Array(storeEvents.length)
    for (let i = 0; i < storeEvents.length; i++) {
      const ev = storeEvents[i]
      next = target.toNextAggregate(next, ev)
      patched[i] = { ...ev, event: { ...ev.event, __persisted: { __pv: target.version, ...next } } }
    }
    storeEvents = patched
  } else {
    for (let i = 0; i < storeEvents.length; i++) next = target.toNextAggregate(next, storeEvents[i])
  }
  const sync = provider[SYNC_MEMORY]
  if (sync && provider.append === sync.append) sync.appendEvents(target.stream, id, version, storeEvents)
  else await provider.append(target.stream, id, version, storeEvents)
  if (!provider[NATIVE]) wakeup.notify(provider)
  return next
}

/**
 * `{ [command]: (aggregateId, body) => Promise<next aggregate> }` for one
 * provided aggregate (from a domain).
 * @param {any} provided a ProvidedAggregate
 * @param {any} handlers command handlers
 */
function createCommands(provided, handlers) {
  if (!isPlainObject(provided) || typeof provided.getAggregate !== 'function' || typeof provided.stream !== 'string') {
    throw codedError(
      'INVALID_ARGUMENT',
      'createCommands: the first argument must be an aggregate of a domain (domain.<name>)',
      TypeError
    )
  }
  const names = commandNames(handlers, 'createCommands')
  /** @type {Record<string, Function>} */
  const commands = Object.create(null)
  for (const name of names) {
    defineOwn(commands, name, async (/** @type {string} */ id, /** @type {any} */ body) => {
      checkId(id)
      const aggregate = await provided.getAggregate(id)
      // awaited here: resolving with a Promise would take extra turns
      return await execute(provided, handlers, name, id, body, aggregate)
    })
  }
  return commands
}

module.exports = { createCommands, execute, commandNames, defineOwn, checkId }
