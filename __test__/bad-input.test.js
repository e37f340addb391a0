'use strict'
// Bad input, tried systematically: every case of the tables below runs on
// every provider of providers.js. A case ends in one of two ways:
//
//   - an exact round trip: what is read back (getEventsFor and getEventsFrom)
//     deep-equals what was written, after the JSON normalisation the case
//     names (JSON.stringify's rules), and the store holds what it held before
//     plus exactly the new events;
//   - a refusal: an Error with a stable `code` whose message names the
//     problem, and the store holds exactly what it held before (events read
//     back through getEventsFrom, and bookmarks).
//
// Cases that call a provider method directly run on the native providers
// only: a user's own provider (the plain JavaScript one here) checks its own
// arguments, and nothing of this package stands between the caller and it.
// Everything that goes through a domain, a command or a handler runs on every
// provider. A case that fails because of a known bug in a part of the package
// that is not fixed yet is marked `todo` with the bug.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const { factories, closeProvider } = require('./providers')
const { root } = require('./pkg')
const { assertCode, snapshot, allEvents } = require('./helpers')
const { query } = require('./pg-server')
const { query: mysqlQuery } = require('./mysql-server')

const T = { timeout: 120000 }
const KiB = 1024
const MiB = 1024 * KiB


// --------------------------------------------------------------- helpers

const isNative = (f) => (f.native ? true : "a user's own provider checks its own arguments: not this package's code")
const hasVariant = (f) => (f.variant ? true : 'this provider takes no table names or limit option')

/** A string of `length` characters that no compression shrinks much. */
function variedString(length) {
  let x = 0x2545f491
  let out = ''
  while (out.length < length) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out += (x >>> 0).toString(36)
  }
  return out.slice(0, length)
}

/**
 * What the store holds in `streams` (and the seed streams) and the positions
 * of `bookmarks` (and the seed bookmark). A read the store refuses is
 * recorded as such, so before and after compare the same way.
 */
async function picture(env, streams = [], bookmarks = []) {
  const events = []
  for (const stream of new Set([...env.seedStreams, ...streams])) {
    try {
      events.push([stream, await snapshot(env.provider, [stream])])
    } catch (err) {
      events.push([stream, `read refused with ${err.code}`])
    }
  }
  const marks = []
  for (const name of new Set(['seed-bookmark', ...bookmarks])) {
    try {
      marks.push([name, await env.provider.getPosition(name)])
    } catch (err) {
      marks.push([name, `read refused with ${err.code}`])
    }
  }
  return { events, marks }
}

/** Asserts that fn is refused with `code` (message matching `message`) and that the store did not change. */
async function assertRefused(env, fn, code, message, { streams = [], bookmarks = [] } = {}) {
  const before = await picture(env, streams, bookmarks)
  const err = await assertCode(fn, code, message)
  assert.deepEqual(await picture(env, streams, bookmarks), before, 'the store changed although the call was refused')
  return err
}

/**
 * Asserts that `stream`/`id` holds exactly `expected` (versions 1..n), read
 * through getEventsFor and getEventsFrom, and that nothing else changed since
 * `before`.
 */
async function assertStoredExactly(env, stream, id, expected, before) {
  const forAggregate = await env.provider.getEventsFor(stream, id)
  assert.deepEqual(
    forAggregate.map((e) => [e.stream, e.aggregateId, e.version]),
    expected.map((_, i) => [stream, id, i + 1]),
    'stream, aggregate id and versions read back by getEventsFor'
  )
  assert.deepEqual(
    forAggregate.map((e) => e.event),
    expected,
    'events read back by getEventsFor'
  )
  const fromStream = (await allEvents(env.provider, [stream])).filter((e) => e.aggregateId === id)
  assert.deepEqual(
    fromStream.map((e) => e.event),
    expected,
    'events read back by getEventsFrom'
  )

  const after = await picture(env, [stream])
  assert.deepEqual(after.marks, before.marks, 'bookmarks changed')
  for (let i = 0; i < after.events.length; i++) {
    const [name, now] = after.events[i]
    const [, then] = before.events[i]
    if (name !== stream) {
      assert.deepEqual(now, then, `stream ${JSON.stringify(name).slice(0, 40)} changed`)
      continue
    }
    assert.deepEqual(now.slice(0, then.length), then, 'events held before changed')
    assert.deepEqual(
      now.slice(then.length).map((e) => [e.aggregateId, e.version, e.event]),
      expected.map((ev, v) => [id, v + 1, ev]),
      'more was added than the events of this call'
    )
  }
}

/** Appends `events` through a command on `stream` and checks the round trip. */
async function commandRoundTrip(env, stream, id, events, expected) {
  const before = await picture(env, [stream])
  const aggregate = await env.commands[stream].emit(id, { events })
  assert.equal(aggregate.version, expected.length)
  await assertStoredExactly(env, stream, id, expected, before)
}

/** Appends `events` through provider.append and checks the round trip. */
async function appendRoundTrip(env, stream, id, events, expected) {
  const before = await picture(env, [stream])
  const p = env.provider
  const stored = await p.append(stream, id, 1, p.createEvents(stream, id, 1, events))
  assert.equal(stored.length, expected.length)
  await assertStoredExactly(env, stream, id, expected, before)
}

/** Appends through provider.append, starting at version 1. */
function rawAppend(env, stream, id, events) {
  return env.provider.append(stream, id, 1, env.provider.createEvents(stream, id, 1, events))
}

/**
 * A function listing the tables of the database behind the provider, after
 * making sure it has a table `x` for an injection to drop; undefined where
 * the test cannot look (a private :memory: database).
 *
 * An SQLite file is looked at from another process: a second SQLite library
 * in this process (better-sqlite3 beside the core's own) that closes its
 * connection would delete the WAL under the core's open store.
 */
async function tablesOf(env) {
  const { factory, ctx } = env
  if (factory.engine === 'postgres') {
    const url = (ctx.database || ctx.db).url
    await query(url, 'CREATE TABLE IF NOT EXISTS x (id integer)')
    return async () =>
      (await query(url, "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).rows.map((r) => r.name)
  }
  if (factory.engine === 'mysql') {
    const url = ctx.database.url
    await mysqlQuery(url, 'CREATE TABLE IF NOT EXISTS x (id integer)')
    return async () =>
      /** @type {any[]} */ (await mysqlQuery(url, 'SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1')).map((r) => r.name)
  }
  if (!ctx.file) return undefined
  if (ctx.db && typeof ctx.db.raw === 'function') {
    // knex: its own connection to the file is open anyway
    await ctx.db.raw('CREATE TABLE IF NOT EXISTS x (id integer)')
    return async () => {
      const res = await ctx.db.raw("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")
      return (Array.isArray(res) ? res : res.rows).map((r) => r.name)
    }
  }
  const run = (sql) => {
    const script = `const D = require(${JSON.stringify(require.resolve('better-sqlite3'))}); const db = new D(process.argv[1]);
      const out = db.prepare(process.argv[2]).reader ? db.prepare(process.argv[2]).all() : db.prepare(process.argv[2]).run(); db.close();
      process.stdout.write(JSON.stringify(out))`
    return JSON.parse(execFileSync(process.execPath, ['-e', script, ctx.file, sql], { encoding: 'utf8' }))
  }
  run('CREATE TABLE IF NOT EXISTS x (id integer)')
  return async () => run("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1").map((r) => r.name)
}

// ------------------------------------------------------------ the cases

/** @type {{ title: string, where?: (f: any) => true | string, todo?: (f: any) => string | undefined, run: (env: any) => Promise<void> }[]} */
const CASES = []

// --- event payloads: each one through a command (every provider) and through
// provider.append (native providers)

const cyclic = () => {
  const ev = { type: 'renamed', name: 'x' }
  ev.self = { parent: ev }
  return [ev]
}

// one code point of every Unicode plane (0..16), and the last two of each
// (the noncharacters U+xFFFE and U+xFFFF, which are still valid text)
const planes = Array.from({ length: 17 }, (_, p) =>
  String.fromCodePoint(p * 0x10000 + 0x100, p * 0x10000 + 0xfffe, p * 0x10000 + 0xffff)
)

const REFUSED_EVENTS = [
  { what: 'an event without a type', events: () => [{ name: 'x' }], message: /"type"/ },
  { what: 'an event whose type is a number', events: () => [{ type: 42 }], message: /"type"/ },
  { what: 'an event whose type is null', events: () => [{ type: null }], message: /"type"/ },
  { what: 'an event whose type is an object', events: () => [{ type: { name: 'created' } }], message: /"type"/ },
  { what: 'an event that is a string', events: () => ['created'], message: /must be an object with a string "type", got "created"/ },
  { what: 'an event that is null', events: () => [null], message: /object|"type"/ },
  { what: 'an event that is an array', events: () => [[{ type: 'created' }]], message: /object|"type"/ },
  { what: 'a BigInt value', events: () => [{ type: 'counted', n: 10n }], message: /BigInt/ },
  { what: 'a cyclic object', events: cyclic, message: /circular/i },
  {
    what: 'one BigInt in a batch of good events',
    events: () => [{ type: 'a' }, { type: 'b', n: 1n }, { type: 'c' }],
    message: /BigInt/,
  },
  {
    what: 'a lone high surrogate in a value',
    events: () => [{ type: 't', s: 'a\ud800b' }],
    message: /lone surrogate/,
  },
  {
    what: 'a lone low surrogate in a nested array',
    events: () => [{ type: 't', list: [1, { s: '\udfff' }] }],
    message: /lone surrogate/,
  },
  {
    what: 'a surrogate pair in the wrong order',
    events: () => [{ type: 't', s: '\udc00\ud800' }],
    message: /lone surrogate/,
  },
  {
    what: 'a lone surrogate in a key',
    events: () => [{ type: 't', nested: { ['k\ud800']: 1 } }],
    message: /lone surrogate/,
  },
  {
    what: 'a lone surrogate in the type',
    events: () => [{ type: 'created\udbff' }],
    message: /lone surrogate/,
  },
]

const STORED_EVENTS = [
  {
    what: 'undefined values',
    rule: 'normalised as JSON.stringify does: an undefined property is dropped, undefined in an array becomes null',
    events: () => [{ type: 't', gone: undefined, list: [1, undefined], nested: { gone: undefined, kept: 0 } }],
    expected: [{ type: 't', list: [1, null], nested: { kept: 0 } }],
  },
  {
    what: 'NaN, Infinity and -Infinity',
    rule: 'normalised as JSON.stringify does: they become null',
    events: () => [{ type: 't', a: NaN, b: Infinity, c: -Infinity, list: [NaN, -Infinity] }],
    expected: [{ type: 't', a: null, b: null, c: null, list: [null, null] }],
  },
  {
    what: 'a negative zero',
    rule: 'normalised as JSON.stringify does: -0 becomes 0',
    events: () => [{ type: 't', z: -0, list: [-0] }],
    expected: [{ type: 't', z: 0, list: [0] }],
  },
  {
    what: 'functions and symbols',
    rule: 'normalised as JSON.stringify does: function and symbol values and symbol keys are dropped, in an array they become null',
    events: () => [
      { type: 't', fn() {}, sym: Symbol('s'), [Symbol('key')]: 1, list: [() => 1, Symbol('s')], kept: 1 },
    ],
    expected: [{ type: 't', list: [null, null], kept: 1 }],
  },
  {
    what: 'a Date',
    rule: 'normalised as JSON.stringify does: toJSON is used, a Date becomes its ISO text',
    events: () => [{ type: 't', at: new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 6)) }],
    expected: [{ type: 't', at: '2020-01-02T03:04:05.006Z' }],
  },
  {
    what: 'text from every Unicode plane, in values, keys and the type',
    rule: 'exact',
    events: () => [
      {
        type: 'créé 😀 \u{10FFFF}',
        bmp: 'Zoë ß 中文 \u2028\u2029 \uFFFD \uFEFF',
        planes,
        ...Object.fromEntries(planes.map((text, p) => [`${text}-${p}`, text])),
      },
    ],
    expected: [
      {
        type: 'créé 😀 \u{10FFFF}',
        bmp: 'Zoë ß 中文 \u2028\u2029 \uFFFD \uFEFF',
        planes,
        ...Object.fromEntries(planes.map((text, p) => [`${text}-${p}`, text])),
      },
    ],
  },
  {
    what: 'NUL and other control characters in values, keys and the type',
    rule: 'exact',
    where: (f) => (f.engine === 'mongo' ? 'MongoDB field names are C strings, without NUL (mongo.test.js checks the refusal)' : true),
    events: () => [{ type: 'a\u0000b', s: 'x\u0000y\b\f\n\r\t\u0001\u001f\u007f"\\/', ['k\u0000']: '\u0000' }],
    expected: [{ type: 'a\u0000b', s: 'x\u0000y\b\f\n\r\t\u0001\u001f\u007f"\\/', ['k\u0000']: '\u0000' }],
  },
  {
    what: 'numbers at the edges of a double',
    rule: 'exact',
    events: () => [
      {
        type: 't',
        list: [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 5e-324, Number.MAX_VALUE, 1e21, 0.1, -1.5e-7],
      },
    ],
    expected: [
      {
        type: 't',
        list: [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 5e-324, Number.MAX_VALUE, 1e21, 0.1, -1.5e-7],
      },
    ],
  },
  {
    what: 'own __proto__ and constructor keys (a prototype pollution attempt)',
    rule: 'exact: they are data, and Object.prototype is untouched',
    events: () => [JSON.parse('{"type":"t","__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}')],
    expected: [JSON.parse('{"type":"t","__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}')],
    check: (read) => {
      assert.equal(({}).polluted, undefined, 'Object.prototype was polluted')
      assert.ok(Object.prototype.hasOwnProperty.call(read[0], '__proto__'), '__proto__ is no own key of the event read back')
    },
  },
]

const BIG_EVENTS = [
  { what: 'a 1 MiB payload', size: 1 * MiB },
  {
    what: 'a 16 MiB payload',
    size: 16 * MiB,
    where: (f) => (f.engine === 'mongo' ? 'MongoDB stores at most 16 MiB per document (mongo.test.js checks the refusal)' : true),
  },
]

for (const c of REFUSED_EVENTS) {
  CASES.push({
    title: `a command returning ${c.what} is refused with INVALID_EVENT`,
    run: (env) =>
      assertRefused(env, () => env.commands.payloads.emit(env.nextId(), { events: c.events() }), 'INVALID_EVENT', c.message, {
        streams: ['payloads'],
      }),
  })
  CASES.push({
    title: `provider.append of ${c.what} is refused with INVALID_EVENT`,
    where: isNative,
    run: (env) =>
      assertRefused(env, () => rawAppend(env, 'payloads', env.nextId(), c.events()), 'INVALID_EVENT', c.message, {
        streams: ['payloads'],
      }),
  })
}

/** Where both conditions hold: true, or the first reason not to run. */
const bothWhere = (a, b) => (f) => {
  const first = a ? a(f) : true
  return first === true ? b(f) : first
}

for (const c of STORED_EVENTS) {
  CASES.push({
    title: `a command returning ${c.what} round-trips (${c.rule})`,
    where: c.where,
    run: async (env) => {
      const id = env.nextId()
      await commandRoundTrip(env, 'payloads', id, c.events(), c.expected)
      if (c.check) c.check((await env.provider.getEventsFor('payloads', id)).map((e) => e.event))
    },
  })
  CASES.push({
    title: `provider.append of ${c.what} round-trips (${c.rule})`,
    where: bothWhere(c.where, isNative),
    run: async (env) => {
      const id = env.nextId()
      await appendRoundTrip(env, 'payloads', id, c.events(), c.expected)
      if (c.check) c.check((await env.provider.getEventsFor('payloads', id)).map((e) => e.event))
    },
  })
}

for (const c of BIG_EVENTS) {
  const payload = () => [{ type: 'big', text: 'é😀'.repeat(c.size / 6) + 'x'.repeat(c.size % 6) }]
  CASES.push({
    title: `a command returning ${c.what} round-trips exactly (MySQL: DATABASE_ERROR, evtstore's TEXT column)`,
    where: c.where,
    run: (env) =>
      env.factory.engine === 'mysql'
        ? assertRefused(env, () => env.commands.payloads.emit(env.nextId(), { events: payload() }), 'DATABASE_ERROR', MYSQL_TEXT_LIMIT, {
            streams: ['payloads'],
          })
        : commandRoundTrip(env, 'bulk', env.nextId(), payload(), payload()),
  })
  CASES.push({
    title: `provider.append of ${c.what} round-trips exactly (MySQL: DATABASE_ERROR, evtstore's TEXT column)`,
    where: bothWhere(c.where, isNative),
    run: (env) =>
      env.factory.engine === 'mysql'
        ? assertRefused(env, () => rawAppend(env, 'bulk', env.nextId(), payload()), 'DATABASE_ERROR', MYSQL_TEXT_LIMIT, { streams: ['bulk'] })
        : appendRoundTrip(env, 'bulk', env.nextId(), payload(), payload()),
  })
}

// --- stream names and aggregate ids

const long = {
  repeated: 'a'.repeat(64 * KiB),
  varied: variedString(64 * KiB),
}
// PostgreSQL keeps (stream, aggregate_id, version) in a btree index, whose
// entries hold at most 2704 bytes after compression
const PG_INDEX_LIMIT = /index row (size \d+ exceeds|requires \d+ bytes)/
// evtstore's MySQL layout keeps names in VARCHAR(255) and events in TEXT
const MYSQL_NAME_LIMIT = /longer than its column .*VARCHAR\(255\)/
const MYSQL_TEXT_LIMIT = /more than the 65535 bytes column "event" .*LONGTEXT/
// Neo4j indexes hold a value of at most ~4-8 KB (the version key, the
// aggregate id and bookmark indexes): a longer one is refused, nothing stored
const NEO4J_INDEX_LIMIT = /too large to index|Property value size/
/**
 * How a 64 KiB name is refused where the store cannot keep it, or undefined.
 * PostgreSQL's index compresses a name of one repeated character under its limit.
 */
function nameLimit(/** @type {any} */ env, varied = true) {
  switch (env.factory.engine) {
    case 'mysql':
      return MYSQL_NAME_LIMIT
    case 'neo4j':
      return NEO4J_INDEX_LIMIT
    case 'postgres':
      return varied ? PG_INDEX_LIMIT : undefined
    default:
      return undefined
  }
}

CASES.push({
  title: 'an empty aggregate id round-trips through a command',
  run: (env) => commandRoundTrip(env, 'payloads', '', [{ type: 'empty-id' }], [{ type: 'empty-id' }]),
})
CASES.push({
  title: 'an empty stream name and aggregate id round-trip through provider.append',
  where: isNative,
  run: (env) => appendRoundTrip(env, '', '', [{ type: 'empty-both' }], [{ type: 'empty-both' }]),
})
CASES.push({
  title: 'a 64 KiB aggregate id of one repeated character round-trips through a command (MySQL: DATABASE_ERROR, VARCHAR(255); Neo4j: its index limit)',
  run: async (env) => {
    const limit = nameLimit(env, false)
    if (!limit) return commandRoundTrip(env, 'payloads', long.repeated, [{ type: 'long-id' }], [{ type: 'long-id' }])
    await assertRefused(env, () => env.commands.payloads.emit(long.repeated, { events: [{ type: 'long-id' }] }), 'DATABASE_ERROR', limit, {
      streams: ['payloads'],
    })
  },
})
CASES.push({
  title: 'a 64 KiB stream name and aggregate id of one repeated character round-trip through provider.append (MySQL: DATABASE_ERROR, VARCHAR(255); Neo4j: its index limit)',
  where: isNative,
  run: async (env) => {
    const limit = nameLimit(env, false)
    if (!limit) return appendRoundTrip(env, long.repeated, long.repeated, [{ type: 'long-both' }], [{ type: 'long-both' }])
    await assertRefused(env, () => rawAppend(env, long.repeated, long.repeated, [{ type: 'long-both' }]), 'DATABASE_ERROR', limit, {
      streams: [long.repeated],
    })
  },
})
CASES.push({
  title: 'a 64 KiB aggregate id of varied characters round-trips through a command (PostgreSQL: DATABASE_ERROR, its index limit; MySQL: VARCHAR(255); Neo4j: its index limit)',
  run: async (env) => {
    const id = long.varied
    const limit = nameLimit(env)
    if (!limit) return commandRoundTrip(env, 'payloads', id, [{ type: 'long-id' }], [{ type: 'long-id' }])
    await assertRefused(env, () => env.commands.payloads.emit(id, { events: [{ type: 'long-id' }] }), 'DATABASE_ERROR', limit, {
      streams: ['payloads'],
    })
  },
})
CASES.push({
  title: 'a 64 KiB stream name of varied characters round-trips through provider.append (PostgreSQL: DATABASE_ERROR, its index limit; MySQL: VARCHAR(255); Neo4j: its index limit)',
  where: isNative,
  run: async (env) => {
    const stream = long.varied
    const limit = nameLimit(env)
    if (!limit) return appendRoundTrip(env, stream, 'x', [{ type: 'long-stream' }], [{ type: 'long-stream' }])
    await assertRefused(env, () => rawAppend(env, stream, 'x', [{ type: 'long-stream' }]), 'DATABASE_ERROR', limit, {
      streams: [stream],
    })
  },
})

CASES.push({
  title: 'a 64 KiB bookmark name of varied characters round-trips through provider.setPosition (PostgreSQL: DATABASE_ERROR, its index limit; MySQL: VARCHAR(255); Neo4j: its index limit)',
  where: isNative,
  run: async (env) => {
    const name = long.varied
    const limit = nameLimit(env)
    if (limit) {
      await assertRefused(env, () => env.provider.setPosition(name, 2), 'DATABASE_ERROR', limit, { bookmarks: [name] })
      return
    }
    const before = await picture(env)
    await env.provider.setPosition(name, 2)
    assert.equal(await env.provider.getPosition(name), 2)
    assert.equal(await env.provider.getPosition(name.slice(0, -1)), 0)
    assert.deepEqual(await picture(env), before)
  },
})

const BAD_NAMES = [
  { what: 'a NUL character', name: 'user\u0000one', message: /NUL/ },
  { what: 'a lone surrogate', name: 'user\ud800', message: /lone surrogate/ },
]
for (const c of BAD_NAMES) {
  CASES.push({
    title: `a command on an aggregate id with ${c.what} is refused with INVALID_ARGUMENT`,
    run: (env) =>
      assertRefused(env, () => env.commands.payloads.emit(c.name, { events: [{ type: 't' }] }), 'INVALID_ARGUMENT', c.message, {
        streams: ['payloads'],
      }),
  })
  CASES.push({
    title: `createDomainV2 with a stream name with ${c.what} is refused with INVALID_ARGUMENT`,
    run: async (env) => {
      const { createAggregate, createDomainV2, createDomainV1 } = root()
      const agg = createAggregate({ stream: c.name, create: () => ({}), fold: () => ({}) })
      await assertCode(() => createDomainV2({ provider: env.provider }, { agg }), 'INVALID_ARGUMENT', c.message)
      await assertCode(
        () => createDomainV1({ stream: c.name, aggregate: () => ({}), fold: () => ({}), provider: env.provider }, {}),
        'INVALID_ARGUMENT',
        c.message
      )
    },
  })
  CASES.push({
    title: `provider.append with ${c.what} in the aggregate id or the stream name is refused with INVALID_ARGUMENT`,
    where: isNative,
    run: async (env) => {
      // the look-alike: a store that maps the bad name onto another must not
      // have stored anything under that one either
      const streams = ['payloads', c.name, 'user\ufffd', 'user']
      await assertRefused(env, () => rawAppend(env, 'payloads', c.name, [{ type: 't' }]), 'INVALID_ARGUMENT', c.message, { streams })
      await assertRefused(env, () => rawAppend(env, c.name, 'x', [{ type: 't' }]), 'INVALID_ARGUMENT', c.message, { streams })
    },
  })
  CASES.push({
    title: `reads with ${c.what} in a stream name, an aggregate id or a bookmark name are refused with INVALID_ARGUMENT`,
    where: isNative,
    run: async (env) => {
      const p = env.provider
      const reads = {
        'getEventsFrom, a stream of the list': () => p.getEventsFrom(['seed', c.name], 0),
        'getEventsFrom, one stream': () => p.getEventsFrom(c.name, 0),
        'getEventsFor, the stream': () => p.getEventsFor(c.name, 's1'),
        'getEventsFor, the aggregate id': () => p.getEventsFor('seed', c.name),
        'getLastEventFor, a stream of the list': () => p.getLastEventFor(['seed', c.name]),
        'getLastEventFor, the aggregate id': () => p.getLastEventFor('seed', c.name),
        'getPosition, the bookmark name': () => p.getPosition(c.name),
      }
      for (const [what, read] of Object.entries(reads)) {
        const err = await assertCode(read, 'INVALID_ARGUMENT', c.message)
        assert.match(err.message, new RegExp(what.split(',')[0]), `${what}: the message does not name the method`)
      }
    },
  })
}
CASES.push({
  title: 'a command on an aggregate id that is no string (42, null, an object) is refused with INVALID_ARGUMENT',
  run: async (env) => {
    for (const id of [42, null, { id: 'x' }]) {
      await assertRefused(env, () => env.commands.payloads.emit(id, { events: [{ type: 't' }] }), 'INVALID_ARGUMENT', /must be a string/, {
        streams: ['payloads'],
      })
    }
  },
})

// --- bookmark names and table names

const INJECTION_NAMES = [
  'events"; drop table x; --',
  "x'); delete from events; --",
  'bookmarks` where 1=1; --',
  '%',
  '_',
  '\\',
  '',
  '😀 \u{10FFFF}',
]

CASES.push({
  title: 'bookmark names with SQL injection text round-trip as data through provider.setPosition',
  where: isNative,
  run: async (env) => {
    const before = await picture(env, ['payloads'], ['events', 'bookmarks', 'x'])
    for (const [i, name] of INJECTION_NAMES.entries()) {
      await env.provider.setPosition(name, 100 + i)
    }
    for (const [i, name] of INJECTION_NAMES.entries()) {
      assert.equal(await env.provider.getPosition(name), 100 + i, `bookmark ${JSON.stringify(name)}`)
    }
    // neighbours of those names and every other bookmark are untouched
    assert.deepEqual(await picture(env, ['payloads'], ['events', 'bookmarks', 'x']), before)
  },
})

CASES.push({
  title: 'a handler whose bookmark name is SQL injection text stores its position under exactly that name',
  run: async (env) => {
    const name = `handler"; drop table bookmarks; --'`
    const last = (await allEvents(env.provider, ['seed'])).at(-1).position
    const before = await picture(env, ['payloads'], ['events', 'bookmarks'])
    const handler = env.createHandler(name, ['seed'])
    assert.equal(await handler.runOnce(), env.seedCount)
    assert.equal(await env.provider.getPosition(name), last)
    assert.deepEqual(await picture(env, ['payloads'], ['events', 'bookmarks']), before)
  },
})

for (const c of BAD_NAMES) {
  CASES.push({
    title: `provider.setPosition with ${c.what} in the bookmark name is refused with INVALID_ARGUMENT`,
    where: isNative,
    run: (env) =>
      assertRefused(env, () => env.provider.setPosition(c.name, 5), 'INVALID_ARGUMENT', c.message, {
        bookmarks: [c.name, 'user\ufffd', 'user\udbff'],
      }),
  })
  CASES.push({
    title: `createHandler with ${c.what} in the bookmark name is refused with INVALID_ARGUMENT`,
    run: (env) =>
      assertRefused(env, () => env.createHandler(c.name, ['seed']).runOnce(), 'INVALID_ARGUMENT', c.message, {
        bookmarks: [c.name, 'user\ufffd'],
      }),
  })
}

const BAD_TABLE_NAMES = ['events"; drop table x; --', 'x; drop table x', 'public.events', 'a'.repeat(64), '']

CASES.push({
  title: 'table names crafted for injection, with a schema, too long or empty are refused with INVALID_NAME, and nothing is dropped',
  where: hasVariant,
  run: async (env) => {
    const { factory, ctx } = env
    const tables = await tablesOf(env)
    const tablesBefore = tables && (await tables())
    assert.ok(!tables || tablesBefore.includes('x'))

    const useVariant = async (opts, use) => {
      const other = await factory.variant(ctx, opts)
      try {
        return await use(other)
      } finally {
        await closeProvider(other)
      }
    }
    const knex = factory.name.startsWith('knex')
    for (const bad of BAD_TABLE_NAMES) {
      // knex: db('') is a query builder on no table at all, and evtstore's
      // knex migrate skips a table whose name is empty
      const [code, shown] = knex && bad === '' ? ['INVALID_ARGUMENT', /query builder on one table/] : ['INVALID_NAME', /table name/]
      await assertRefused(env, () => useVariant({ events: bad }, (p) => p.getEventsFrom(['seed'], 0)), code, shown)
      await assertRefused(env, () => useVariant({ bookmarks: bad }, (p) => p.getPosition('seed-bookmark')), code, shown)
      await assertRefused(env, () => useVariant({ events: bad }, (p) => rawAppend({ provider: p }, 'seed', 'y', [{ type: 't' }])), code, shown)
      await assertRefused(env, () => useVariant({ bookmarks: bad }, (p) => p.setPosition('seed-bookmark', 9)), code, shown)
      if (knex && bad === '') continue // migrate: the next case
      await assertRefused(env, () => factory.migrateWith(ctx, { events: bad }), code, shown)
      await assertRefused(env, () => factory.migrateWith(ctx, { bookmarks: bad }), code, shown)
    }
    if (tables) assert.deepEqual(await tables(), tablesBefore, 'the tables of the database changed')
  },
})

CASES.push({
  title: 'knex migrate with one table name empty creates only the other table, as evtstore does',
  // where the tables have other names than the defaults, a table made under a
  // default name shows
  where: (f) =>
    f.name.startsWith('knex') && !f.name.includes(':memory:') && f.tables.events !== 'events'
      ? true
      : 'knex with other table names than the defaults only',
  run: async (env) => {
    const tables = await tablesOf(env)
    const before = await tables()
    await env.factory.migrateWith(env.ctx, { events: '', bookmarks: 'only_bookmarks' })
    await env.factory.migrateWith(env.ctx, { events: 'only_events', bookmarks: '' })
    // the bookmarks table brings its handler leases (docs/many-instances.md)
    assert.deepEqual(await tables(), [...before, 'only_bookmarks', 'only_bookmarks_leases', 'only_events'].sort())
  },
})

// --- limits

const BAD_LIMITS = [0, -1, 1.5, '10']

for (const limit of BAD_LIMITS) {
  CASES.push({
    title: `a provider limit of ${JSON.stringify(limit)} is refused with INVALID_ARGUMENT`,
    where: (f) => (f.variant || f.engine === 'memory' ? true : "a user's own provider checks its own options"),
    run: async (env) => {
      const { factory, ctx } = env
      if (factory.variant) {
        const read = async () => {
          const other = await factory.variant(ctx, { limit })
          try {
            return await other.getEventsFrom(['seed'], 0)
          } finally {
            await closeProvider(other)
          }
        }
        await assertRefused(env, read, 'INVALID_ARGUMENT', /limit/)
        return
      }
      // the memory provider has no limit option: evtstore's way is to set provider.limit
      const fresh = await factory.create({ limit })
      try {
        await rawAppend({ provider: fresh.provider }, 'seed', 'a', [{ type: 't' }])
        await assertCode(() => fresh.provider.getEventsFrom(['seed'], 0), 'INVALID_ARGUMENT', /limit/)
      } finally {
        await fresh.cleanup()
      }
    },
  })
  CASES.push({
    title: `getEventsFrom with a limit argument of ${JSON.stringify(limit)} is refused with INVALID_ARGUMENT`,
    where: isNative,
    run: (env) => assertRefused(env, () => env.provider.getEventsFrom(['seed'], 0, limit), 'INVALID_ARGUMENT', /limit/),
  })
}

// --- positions

const BAD_POSITIONS = ['1', -1, 1.5, NaN, Infinity]
const shownPosition = (p) => (typeof p === 'string' ? JSON.stringify(p) : String(p))

for (const position of BAD_POSITIONS) {
  CASES.push({
    title: `getEventsFrom after position ${shownPosition(position)} is refused with INVALID_ARGUMENT`,
    where: isNative,
    run: (env) => assertRefused(env, () => env.provider.getEventsFrom(['seed'], position), 'INVALID_ARGUMENT', /position/i),
  })
  CASES.push({
    title: `getEventsFor after position ${shownPosition(position)} is refused with INVALID_ARGUMENT`,
    where: isNative,
    run: (env) => assertRefused(env, () => env.provider.getEventsFor('seed', 's1', position), 'INVALID_ARGUMENT', /position/i),
  })
  CASES.push({
    title: `provider.setPosition to ${shownPosition(position)} is refused with INVALID_ARGUMENT and the bookmark keeps its position`,
    where: isNative,
    run: (env) =>
      assertRefused(env, () => env.provider.setPosition('seed-bookmark', position), 'INVALID_ARGUMENT', /position/i),
  })
}

CASES.push({
  title: 'a null position reads from the start: getEventsFrom as after 0, getEventsFor as without a position',
  where: isNative,
  run: async (env) => {
    const p = env.provider
    const all = await p.getEventsFrom(['seed'], 0)
    assert.equal(all.length, env.seedCount)
    assert.deepEqual(await p.getEventsFrom(['seed'], null), all)
    assert.deepEqual(await p.getEventsFor('seed', 's1', null), await p.getEventsFor('seed', 's1'))
  },
})

CASES.push({
  title: 'provider.setPosition to null is refused with INVALID_ARGUMENT and the bookmark keeps its position',
  where: isNative,
  run: (env) => assertRefused(env, () => env.provider.setPosition('seed-bookmark', null), 'INVALID_ARGUMENT', /position/i),
})

for (const position of [...BAD_POSITIONS, null]) {
  CASES.push({
    title: `handler.setPosition(${shownPosition(position)}) is refused with INVALID_ARGUMENT and the handler keeps its position`,
    run: async (env) => {
      const name = `handler-position-${env.nextId()}`
      const handler = env.createHandler(name, ['seed'])
      await handler.runOnce()
      const reached = await handler.getPosition()
      assert.ok(reached > 0)
      await assertRefused(env, () => handler.setPosition(position), 'INVALID_ARGUMENT', /position/i, { bookmarks: [name] })
      assert.equal(await handler.getPosition(), reached)
      assert.equal(await handler.runOnce(), 0)
    },
  })
}

CASES.push({
  title: 'provider.append at version "1" (a string) is refused with INVALID_ARGUMENT',
  where: isNative,
  run: (env) =>
    assertRefused(env, () => env.provider.append('payloads', env.nextId(), '1', [{ type: 't' }]), 'INVALID_ARGUMENT', /version/, {
      streams: ['payloads'],
    }),
})

CASES.push({
  title: "handler.setPosition keeps what a user's provider may use as a position: a BigInt or an object (a BSON Timestamp)",
  where: (f) => (f.engine === 'js' ? true : 'a native store keeps numbers only'),
  run: async (env) => {
    const name = `handler-opaque-position-${env.nextId()}`
    const handler = env.createHandler(name, ['seed'])
    const timestamp = { high: 0, low: 2 }
    await handler.setPosition(timestamp)
    assert.deepEqual(await env.provider.getPosition(name), timestamp)
    await handler.setPosition(3n)
    assert.equal(await env.provider.getPosition(name), 3n)
  },
})

// --- empty stream lists

CASES.push({
  title: 'getEventsFrom and getLastEventFor with an empty stream list are refused with INVALID_ARGUMENT',
  where: isNative,
  run: async (env) => {
    await assertRefused(env, () => env.provider.getEventsFrom([], 0), 'INVALID_ARGUMENT', /stream/)
    await assertRefused(env, () => env.provider.getLastEventFor([]), 'INVALID_ARGUMENT', /stream/)
  },
})

CASES.push({
  title: 'a stream list holding a stream that is no string is refused with INVALID_ARGUMENT naming the stream name',
  where: isNative,
  run: async (env) => {
    await assertRefused(env, () => env.provider.getEventsFrom(['seed', 42], 0), 'INVALID_ARGUMENT', /stream name must be a string, got 42/)
    await assertRefused(env, () => env.provider.getLastEventFor(['seed', null]), 'INVALID_ARGUMENT', /stream name must be a string, got null/)
  },
})

CASES.push({
  title: 'a handler on a stream name with NUL or a lone surrogate is refused with INVALID_ARGUMENT (domain and root createHandler)',
  run: async (env) => {
    for (const c of BAD_NAMES) {
      await assertRefused(env, () => env.createHandler('bad-stream', ['seed', c.name]), 'INVALID_ARGUMENT', c.message, {
        bookmarks: ['bad-stream'],
      })
      await assertRefused(
        env,
        () => root().createHandler({ bookmark: 'bad-stream', streams: [c.name], provider: env.provider }),
        'INVALID_ARGUMENT',
        c.message,
        { bookmarks: ['bad-stream'] }
      )
    }
  },
})

CASES.push({
  title: 'a handler on an empty stream list is refused with INVALID_ARGUMENT (domain and root createHandler)',
  run: async (env) => {
    await assertRefused(env, () => env.createHandler('no-streams', []), 'INVALID_ARGUMENT', /stream/, { bookmarks: ['no-streams'] })
    await assertRefused(
      env,
      () => root().createHandler({ bookmark: 'no-streams', streams: [], provider: env.provider }),
      'INVALID_ARGUMENT',
      /stream/,
      { bookmarks: ['no-streams'] }
    )
  },
})

// --- command names

const PROTOTYPE_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty']

/** Command handlers named `names`, each returning an event that says which one ran. */
function handlersNamed(names) {
  const handlers = {}
  for (const name of names) {
    // defineProperty: `__proto__` becomes an own key, not the prototype
    Object.defineProperty(handlers, name, {
      value: async (cmd) => ({ type: 'ran', command: name, cmdType: cmd.type }),
      enumerable: true,
    })
  }
  return handlers
}

CASES.push({
  title: 'command names constructor, __proto__, toString and hasOwnProperty work as commands (createCommands)',
  run: async (env) => {
    const { createCommands } = root()
    const cmds = createCommands(env.domain.payloads, handlersNamed(PROTOTYPE_NAMES))
    const id = env.nextId()
    const before = await picture(env, ['payloads'])
    for (const [i, name] of PROTOTYPE_NAMES.entries()) {
      assert.ok(Object.prototype.hasOwnProperty.call(cmds, name), `${name} is no own command`)
      const aggregate = await cmds[name](id, {})
      assert.equal(aggregate.version, i + 1)
    }
    const expected = PROTOTYPE_NAMES.map((name) => ({ type: 'ran', command: name, cmdType: name }))
    await assertStoredExactly(env, 'payloads', id, expected, before)
  },
})

CASES.push({
  title: 'an own "__proto__" key of a command body or of create()\'s object stays an own key (no prototype is set)',
  run: async (env) => {
    const { createCommands, createAggregate, createDomainV2 } = root()
    const polluted = () => JSON.parse('{"__proto__":{"polluted":true},"n":1}')
    const seen = []
    const { domain } = createDomainV2(
      { provider: env.provider },
      { payloads: createAggregate({ stream: 'payloads', create: polluted, fold: () => ({}) }) }
    )
    const cmds = createCommands(domain.payloads, {
      async touch(cmd, agg) {
        seen.push(cmd, agg)
        return { type: 'touched' }
      },
    })
    const after = await cmds.touch(env.nextId(), polluted())
    for (const obj of [...seen, after]) {
      assert.equal(Object.getPrototypeOf(obj), Object.prototype)
      assert.ok(Object.prototype.hasOwnProperty.call(obj, '__proto__'))
      assert.equal(obj.polluted, undefined)
      assert.equal(obj.n, 1)
    }
    assert.equal(seen[0].type, 'touch')
    assert.equal(after.version, 1)
  },
})

CASES.push({
  title: 'command names constructor, __proto__, toString and hasOwnProperty work as commands (createDomainV1)',
  run: async (env) => {
    const { createDomainV1 } = root()
    const v1 = createDomainV1(
      { stream: 'payloads', aggregate: () => ({ count: 0 }), fold: (ev, agg) => ({ count: agg.count + 1 }), provider: env.provider },
      handlersNamed(PROTOTYPE_NAMES)
    )
    const id = env.nextId()
    const before = await picture(env, ['payloads'])
    for (const [i, name] of PROTOTYPE_NAMES.entries()) {
      const aggregate = await v1.command[name](id, {})
      assert.equal(aggregate.version, i + 1)
      assert.equal(aggregate.count, i + 1)
    }
    const executable = await v1.getAggregate(id)
    assert.equal(typeof executable.toString, 'function')
    assert.equal((await executable.toString({})).aggregate.version, PROTOTYPE_NAMES.length + 1)
    const expected = [...PROTOTYPE_NAMES, 'toString'].map((name) => ({ type: 'ran', command: name, cmdType: name }))
    await assertStoredExactly(env, 'payloads', id, expected, before)
  },
})

CASES.push({
  title: 'an unknown command name is absent: nothing inherited from Object.prototype runs, calling it throws a TypeError and stores nothing',
  run: async (env) => {
    const { createCommands } = root()
    const cmds = createCommands(env.domain.payloads, handlersNamed(['known']))
    assert.deepEqual(Object.keys(cmds), ['known'])
    const before = await picture(env, ['payloads'])
    for (const name of ['unknown', ...PROTOTYPE_NAMES, 'valueOf']) {
      assert.equal(cmds[name], undefined, `cmds.${name} is ${typeof cmds[name]}`)
      assert.ok(!(name in cmds), `${name} in cmds`)
      await assert.rejects(async () => cmds[name]('unknown-command', {}), (err) => err instanceof TypeError && /not a function/.test(err.message))
    }
    assert.deepEqual(await picture(env, ['payloads']), before, 'the store changed')
    assert.deepEqual(await env.provider.getEventsFor('payloads', 'unknown-command'), [])
  },
})

CASES.push({
  title: "a command body cannot change the command's type or aggregate id",
  run: async (env) => {
    const { createCommands } = root()
    const cmds = createCommands(env.domain.payloads, {
      async record(cmd) {
        return { type: 'recorded', cmd }
      },
    })
    const id = env.nextId()
    const before = await picture(env, ['payloads'])
    await cmds.record(id, { type: 'forged', aggregateId: 'someone-else', note: 'kept' })
    await assertStoredExactly(env, 'payloads', id, [{ type: 'recorded', cmd: { type: 'record', aggregateId: id, note: 'kept' } }], before)
    assert.deepEqual(await env.provider.getEventsFor('payloads', 'someone-else'), [])
  },
})

// ------------------------------------------------------------ the runner

for (const factory of factories) {
  if (factory.skip || factory.fail) {
    describe(`bad input [${factory.name}]`, () => {
      it('needs its server', factory.skip ? { skip: factory.skip } : {}, () => {
        throw new Error(factory.fail)
      })
    })
    continue
  }

  describe(`bad input [${factory.name}]`, () => {
    // one provider for the whole table: every case works on ids of its own and
    // compares the store before and after itself
    const env = { factory, seedStreams: ['seed'] }

    before(async () => {
      const { createAggregate, createDomainV2, createCommands } = root()
      env.ctx = await factory.create()
      env.provider = env.ctx.provider
      let counter = 0
      env.nextId = () => `case-${++counter}`

      const counting = (stream) =>
        createAggregate({ stream, create: () => ({ count: 0 }), fold: (ev, agg) => ({ count: agg.count + 1 }) })
      const { domain, createHandler } = createDomainV2(
        { provider: env.provider },
        { seed: counting('seed'), payloads: counting('payloads'), bulk: counting('bulk') }
      )
      const emit = async (cmd) => cmd.events
      env.domain = domain
      env.createHandler = createHandler
      env.commands = {
        seed: createCommands(domain.seed, { emit }),
        payloads: createCommands(domain.payloads, { emit }),
        bulk: createCommands(domain.bulk, { emit }),
      }
      // something for "the store did not change" to compare
      await env.commands.seed.emit('s1', { events: [{ type: 'created', name: 'a' }, { type: 'renamed', name: 'b' }] })
      await env.commands.seed.emit('s2', { events: [{ type: 'created', name: 'c' }] })
      env.seedCount = 3
      await env.provider.setPosition('seed-bookmark', 1)
    })

    after(async () => {
      if (env.ctx) await env.ctx.cleanup()
    })

    for (const c of CASES) {
      // a case that does not apply to this provider (its `where` says why)
      // is not registered: "skipped" stays reserved for a missing server
      const applies = c.where ? c.where(factory) : true
      if (applies !== true) continue
      const todo = c.todo ? c.todo(factory) : undefined
      const opts = { ...T }
      if (todo) opts.todo = todo
      it(c.title, opts, () => c.run(env))
    }
  })
}
