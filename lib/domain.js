'use strict'

const { createProvidedAggregate, createPersistedAggregate, checkCacheSize } = require('./aggregate')
const { createEngine, publicMethods, withState } = require('./handler')
const { execute, commandNames, defineOwn, checkId } = require('./commands')
const { codedError } = require('./errors')
const { isPlainObject, assertName } = require('./util')

/**
 * @param {any} opts
 * @param {string} fn
 */
function checkDomainOptions(opts, fn) {
  if (!isPlainObject(opts) || !opts.provider) {
    throw codedError('INVALID_ARGUMENT', `${fn}: the first argument must be { provider, useCache?, cacheSize? }`, TypeError)
  }
  checkCacheSize(opts.cacheSize, fn)
}

/**
 * A domain over several aggregates sharing one provider: returns the
 * provided aggregates (`domain.<name>`) and a createHandler for their streams.
 * @param {{ provider: any, useCache?: boolean, cacheSize?: number }} opts
 * @param {Record<string, any>} aggregates StorableAggregates from createAggregate
 */
function createDomainV2(opts, aggregates) {
  checkDomainOptions(opts, 'createDomain')
  if (!isPlainObject(aggregates)) {
    throw codedError('INVALID_ARGUMENT', 'createDomain: the second argument must be { name: createAggregate(...) }', TypeError)
  }
  /** @type {Record<string, any>} */
  const domain = {}
  for (const key of Object.keys(aggregates)) {
    const storable = aggregates[key]
    if (!isPlainObject(storable)) {
      throw codedError('INVALID_ARGUMENT', `createDomain: "${key}" is not an aggregate from createAggregate()`, TypeError)
    }
    if (typeof storable.stream === 'string') assertName(storable.stream, 'the stream name', `createDomain: "${key}"`)
    const aggOpts = { ...storable, provider: opts.provider, useCache: opts.useCache, cacheSize: opts.cacheSize }
    const provided =
      aggOpts.persistAggregate && aggOpts.version
        ? createPersistedAggregate(aggOpts)
        : createProvidedAggregate(aggOpts)
    defineOwn(domain, key, provided)
  }

  /**
   * @param {any} bookmark
   * @param {string[]} streams
   * @param {object} [options]
   */
  function createHandler(bookmark, streams, options = {}) {
    const engine = createEngine({ ...options, bookmark, streams, provider: opts.provider })
    return withState(
      {
        handle: (/** @type {string} */ stream, /** @type {string} */ type, /** @type {Function} */ cb) =>
          engine.on(stream, type, cb),
        ...publicMethods(engine),
      },
      engine
    )
  }

  return { domain, createHandler }
}

/**
 * @param {{ provider: any, useCache?: boolean, cacheSize?: number }} opts
 * @param {Record<string, any>} aggregates
 */
function createDomain(opts, aggregates) {
  return createDomainV2(opts, aggregates)
}

/**
 * evtstore's first domain API: one aggregate, its commands and its handlers.
 * @param {{ aggregate: () => object, stream: string, fold: Function, provider: any, useCache?: boolean, cacheSize?: number }} opts
 * @param {Record<string, Function>} handlers command handlers
 */
function createDomainV1(opts, handlers) {
  checkDomainOptions(opts, 'createDomainV1')
  const names = commandNames(handlers, 'createDomainV1')
  if (Object.prototype.hasOwnProperty.call(handlers, 'aggregate')) {
    throw new Error('Invalid command body: Command handler function cannot be named "aggregate"')
  }
  if (typeof opts.stream === 'string') assertName(opts.stream, 'the stream name', 'createDomainV1')
  const provided = createProvidedAggregate({
    stream: opts.stream,
    aggregate: opts.aggregate,
    fold: opts.fold,
    provider: opts.provider,
    useCache: opts.useCache,
    cacheSize: opts.cacheSize,
  })

  /** @type {Record<string, Function>} */
  const command = Object.create(null)
  for (const name of names) {
    defineOwn(command, name, async (/** @type {string} */ id, /** @type {any} */ body) => {
      checkId(id)
      const aggregate = await provided.getAggregate(id)
      return execute(provided, handlers, name, id, body, aggregate)
    })
  }

  /**
   * An aggregate with its commands bound: each command runs against this
   * aggregate and resolves with the executable aggregate that follows it.
   * @param {any} aggregate
   */
  function executable(aggregate) {
    const id = aggregate.aggregateId
    /** @type {Record<string, any>} */
    const exec = Object.create(null)
    for (const name of names) {
      defineOwn(exec, name, async (/** @type {any} */ body) =>
        executable(await execute(provided, handlers, name, id, body, aggregate))
      )
    }
    defineOwn(exec, 'aggregate', aggregate)
    return exec
  }

  /** @param {string} id */
  async function getAggregate(id) {
    checkId(id)
    return executable(await provided.getAggregate(id))
  }

  /**
   * @param {any} bookmark
   * @param {object} [options]
   */
  function handler(bookmark, options = {}) {
    const engine = createEngine({ ...options, bookmark, streams: [opts.stream], provider: opts.provider })
    const stream = opts.stream
    return withState({
      handle: (/** @type {string} */ type, /** @type {Function} */ cb) => engine.on(stream, type, cb),
      handlers: (/** @type {Record<string, Function>} */ body) => {
        if (!body || typeof body !== 'object') {
          throw codedError('INVALID_ARGUMENT', 'handlers: expected an object of { eventType: callback }', TypeError)
        }
        for (const type of Object.keys(body)) {
          if (body[type] !== undefined) engine.on(stream, type, body[type])
        }
      },
      ...publicMethods(engine),
    }, engine)
  }

  return { handler, command, getAggregate }
}

module.exports = { createDomainV2, createDomain, createDomainV1 }
