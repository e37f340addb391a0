'use strict'
// What users can see of the values evtstore 12.0.1 hands out, compared with
// ours on the same store: the StoreEvents of the providers (in memory, on
// one SQLite file written and read by evtstore's knex provider with sqlite3
// and by ours, and on PostgreSQL through provider/pg and provider/postgres),
// the errors, and what the handler methods return. Where ours is
// different on purpose, the test pins the difference that docs/differences.md
// describes, so that a change on either side shows up here.
const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const knex = require('knex')
const { ROOT, ORIGINAL } = require('./evtstore-modules')

const original = {
  root: require(ORIGINAL),
  memory: require(path.join(ORIGINAL, 'provider/memory')),
  knex: require(path.join(ORIGINAL, 'provider/knex')),
}
const ours = {
  root: require(ROOT),
  memory: require(path.join(ROOT, 'provider/memory')),
  knex: require(path.join(ROOT, 'provider/knex')),
  sqlite: require(path.join(ROOT, 'provider/sqlite')),
}

/** @param {any} v */
const kind = (v) => (v === null ? 'null' : v instanceof Date ? 'Date' : Array.isArray(v) ? 'array' : typeof v)

/** The JS kind of each field of a StoreEvent (the event's own keys listed). */
function shape(/** @type {any} */ ev) {
  assert.ok(ev && typeof ev === 'object', `expected a StoreEvent, got ${ev}`)
  return Object.fromEntries(
    Object.keys(ev)
      .sort()
      .map((k) => [k, k === 'event' ? Object.keys(ev.event).sort() : kind(ev[k])])
  )
}

const STORE_EVENT = {
  aggregateId: 'string',
  event: ['n', 'type'],
  position: 'number',
  stream: 'string',
  timestamp: 'Date',
  version: 'number',
}

/**
 * Appends the same events through `p` and reads them back every way.
 * @param {any} p a Provider
 */
async function exercise(p) {
  const appended = await p.append('users', 'u1', 1, p.createEvents('users', 'u1', 1, [{ type: 'a', n: 1 }, { type: 'b', n: 2 }]))
  await p.append('posts', 'p1', 1, p.createEvents('posts', 'p1', 1, [{ type: 'c', n: 3 }]))
  const created = p.createEvents('users', 'u1', 3, [{ type: 'd', n: 4 }])
  const eventsFor = await p.getEventsFor('users', 'u1')
  const eventsFrom = await p.getEventsFrom(['users', 'posts'], 0)
  // evtstore 12.0.1's provider/postgres fails here (docs/differences.md): kept as the error
  const last = await p.getLastEventFor('users', 'u1').catch((/** @type {any} */ err) => err)
  const unknownBookmark = await p.getPosition('never-set')
  await p.setPosition('bm', eventsFrom[1].position)
  const bookmark = await p.getPosition('bm')
  return { appended, created, eventsFor, eventsFrom, last, unknownBookmark, bookmark }
}

/** The SQLite file of the SQLite test, written by evtstore's knex provider and ours. */
let sqliteFile = ''
const cleanups = []
after(async () => {
  for (const fn of cleanups.reverse()) await fn()
})

test('memory: StoreEvents and bookmark positions have the same JS types as evtstore', async () => {
  const theirs = await exercise(original.memory.createProvider())
  const mine = await exercise(ours.memory.createProvider())
  for (const side of [theirs, mine]) {
    for (const list of [side.appended, side.created, side.eventsFor, side.eventsFrom]) {
      for (const ev of list) assert.deepEqual(shape(ev), STORE_EVENT)
    }
    assert.deepEqual(shape(side.last), STORE_EVENT)
    assert.equal(side.unknownBookmark, 0)
    assert.equal(kind(side.bookmark), 'number')
  }
  assert.deepEqual(
    mine.eventsFrom.map((e) => e.position),
    theirs.eventsFrom.map((e) => e.position)
  )
})

test('SQLite (one file, evtstore through knex + sqlite3 and ours): position is a number on both; timestamp a Date on ours where evtstore gives the column number', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evtstore-shapes-'))
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'events.sqlite')
  const db = knex({ client: 'sqlite3', connection: { filename: file }, useNullAsDefault: true })
  cleanups.push(() => db.destroy())
  await original.knex.migrate({ client: db, events: 'events', bookmarks: 'bookmarks' })
  const theirProvider = original.knex.createProvider({ events: () => db('events'), bookmarks: () => db('bookmarks') })
  const theirs = await exercise(theirProvider)

  // ours on the same file and rows: through knex (the drop-in form) and by file name
  const oursKnex = ours.knex.createProvider({ events: () => db('events'), bookmarks: () => db('bookmarks') })
  const oursFile = ours.sqlite.createProvider({ file })
  cleanups.push(() => oursKnex.close(), () => oursFile.close())

  const theirShape = { ...STORE_EVENT, timestamp: 'number' }
  for (const ev of [...theirs.eventsFor, ...theirs.eventsFrom, theirs.last]) assert.deepEqual(shape(ev), theirShape)
  // evtstore's append sets each position to the row knex returns ({ position }), on the events it was given
  for (const ev of theirs.appended) {
    assert.equal(kind(ev.position), 'object')
    assert.deepEqual(Object.keys(ev.position), ['position'])
  }
  assert.equal(theirs.unknownBookmark, 0)
  assert.equal(kind(theirs.bookmark), 'number')

  for (const p of [oursKnex, oursFile]) {
    const eventsFrom = await p.getEventsFrom(['users', 'posts'], 0)
    const eventsFor = await p.getEventsFor('users', 'u1')
    const last = await p.getLastEventFor('users', 'u1')
    for (const ev of [...eventsFrom, ...eventsFor, last]) assert.deepEqual(shape(ev), STORE_EVENT)
    // the same rows: the same values, the timestamp the same instant
    const plain = (/** @type {any[]} */ list) =>
      list.map((e) => ({ ...e, timestamp: e.timestamp instanceof Date ? e.timestamp.getTime() : e.timestamp }))
    assert.deepEqual(plain(eventsFrom), plain(theirs.eventsFrom))
    assert.deepEqual(plain(eventsFor), plain(theirs.eventsFor))
    assert.equal(await p.getPosition('bm'), theirs.bookmark)
    assert.equal(await p.getPosition('never-set'), 0)
  }

  // rows ours appends, read by both: positions numbers on both, evtstore's timestamps the column number again
  const mineAppended = await oursKnex.append('users', 'u2', 1, oursKnex.createEvents('users', 'u2', 1, [{ type: 'a', n: 5 }]))
  for (const ev of mineAppended) assert.deepEqual(shape(ev), STORE_EVENT)
  const [theirRead] = await theirProvider.getEventsFor('users', 'u2')
  const [mineRead] = await oursFile.getEventsFor('users', 'u2')
  assert.deepEqual(shape(theirRead), theirShape)
  assert.deepEqual(shape(mineRead), STORE_EVENT)
  assert.equal(theirRead.position, mineRead.position)
  assert.equal(theirRead.timestamp, mineRead.timestamp.getTime())

  sqliteFile = file
})

test("errors: the same message, msg, code and classes as evtstore's; name is the class name on ours, 'Error' on evtstore", () => {
  for (const side of [original, ours]) {
    const { CommandError, VersionError } = side.root
    const cmd = new CommandError('Not allowed', 'FORBIDDEN')
    const conflict = new VersionError('users/u1')
    assert.ok(cmd instanceof Error && conflict instanceof CommandError)
    assert.equal(cmd.message, 'Not allowed')
    assert.equal(cmd.msg, 'Not allowed')
    assert.equal(cmd.code, 'FORBIDDEN')
    assert.equal(conflict.message, 'Version conflict error: users/u1')
    assert.equal(conflict.code, 'VERSION_CONFLICT')
    assert.deepEqual(Object.keys(cmd), ['msg', 'code'])
    assert.equal(cmd.constructor.name, 'CommandError')
    assert.equal(conflict.constructor.name, 'VersionError')
  }
  assert.equal(new original.root.CommandError('x').name, 'Error')
  assert.equal(new original.root.VersionError().name, 'Error')
  assert.equal(new ours.root.CommandError('x').name, 'CommandError')
  assert.equal(new ours.root.VersionError().name, 'VersionError')
  assert.equal(String(new ours.root.VersionError()), 'VersionError: Version conflict error')
})

/** Runs fixtures/handler-shapes.js for one package (evtstore's handlers keep its process alive: a process of their own). */
function handlerShapes(/** @type {string} */ pkgDir) {
  const res = spawnSync(process.execPath, [path.join(__dirname, 'fixtures', 'handler-shapes.js'), pkgDir, sqliteFile], {
    encoding: 'utf8',
    timeout: 60000,
  })
  assert.equal(res.status, 0, `handler-shapes.js ${pkgDir} failed:\n${res.stderr}`)
  return JSON.parse(res.stdout)
}

test('handlers: stop() returns undefined on evtstore and a Promise of undefined on ours; runOnce(n?) a Promise of the count (+ n) on both; meta has a Date on both', (t) => {
  if (!sqliteFile) return t.skip('needs the SQLite file of the test before')
  const theirs = handlerShapes(ORIGINAL)
  const mine = handlerShapes(ROOT)
  const all = (/** @type {any} */ v) => ({ domain: v, standalone: v, v1: v })
  assert.deepEqual(theirs.stop, all('undefined'))
  assert.deepEqual(mine.stop, all('Promise'))
  assert.deepEqual(mine.stopResolves, all('undefined'))
  for (const side of [theirs, mine]) {
    assert.deepEqual(side.runOnce, all(['Promise', 0]))
    // n is added to the count of events read (2, then 0)
    assert.deepEqual(side.runOnceWithCount, [7, 1])
    // what folds and handlers get: u1's 2 events folded + the 2 'a' events of the file handled;
    // the timestamp a Date on both (evtstore converts the column number there)
    assert.equal(side.metas.length, 4)
    for (const meta of side.metas) assert.deepEqual(meta, { timestamp: 'Date', position: 'number' })
  }
  // evtstore's domain and standalone handler objects also carry its internal EventHandler (__handler); ours do not
  assert.deepEqual(theirs.internals, { domain: true, standalone: true, v1: false })
  assert.deepEqual(mine.internals, all(false))
})

// PostgreSQL: evtstore's provider/pg (node-postgres) and provider/postgres
// (postgres.js), and ours with the same driver object, on one database each.
const pgServer = require('./pg-server')
const pgNeed = pgServer.pgRequirement()

for (const driver of ['pg', 'postgres']) {
  test(
    `PostgreSQL through provider/${driver}: what evtstore and ours hand out for the same rows`,
    pgNeed.skip ? { skip: pgNeed.skip } : {},
    async () => {
      if (pgNeed.fail) throw new Error(pgNeed.fail)
      const db = await pgServer.createDatabase()
      cleanups.push(() => db.drop())
      const theirModule = require(path.join(ORIGINAL, `provider/${driver}`))
      const ourModule = require(path.join(ROOT, `provider/${driver}`))
      let options
      if (driver === 'pg') {
        const { Pool } = require('pg')
        const pool = new Pool({ connectionString: db.url, max: 2 })
        cleanups.push(() => pool.end())
        options = { client: pool, events: 'events', bookmarks: 'bookmarks' }
      } else {
        const postgres = require('postgres')
        const sql = postgres(db.url, { max: 2, onnotice() {} })
        cleanups.push(() => sql.end({ timeout: 1 }))
        options = { sql, events: 'events', bookmarks: 'bookmarks' }
      }
      await theirModule.migrate(options)
      const theirs = await exercise(theirModule.createProvider(options))
      const mineProvider = ourModule.createProvider(options)
      cleanups.push(() => mineProvider.close())
      const mine = {
        eventsFor: await mineProvider.getEventsFor('users', 'u1'),
        eventsFrom: await mineProvider.getEventsFrom(['users', 'posts'], 0),
        last: await mineProvider.getLastEventFor('users', 'u1'),
        bookmark: await mineProvider.getPosition('bm'),
      }
      // ours: every field as the typings say, positions numbers
      for (const ev of [...mine.eventsFor, ...mine.eventsFrom, mine.last]) assert.deepEqual(shape(ev), STORE_EVENT)
      assert.equal(kind(mine.bookmark), 'number')
      // evtstore: what its driver gives for a bigint column (pg: a string; postgres.js: a string too), pinned
      if (driver === 'postgres') {
        // evtstore's postgres.js provider quotes the stream as a column name there
        assert.match(String(theirs.last && theirs.last.message), /column "users" does not exist/)
        theirs.last = theirs.eventsFor[theirs.eventsFor.length - 1]
      }
      const theirKinds = new Set([...theirs.eventsFor, ...theirs.eventsFrom, theirs.last].map((ev) => kind(ev.position)))
      const theirBookmark = kind(theirs.bookmark)
      assert.deepEqual([...theirKinds], [THEIR_PG_POSITION[driver]], `evtstore ${driver} positions`)
      assert.equal(theirBookmark, THEIR_PG_BOOKMARK[driver], `evtstore ${driver} bookmark`)
      // the same rows and values either way
      const plain = (/** @type {any[]} */ list) =>
        list.map((e) => ({ ...e, position: Number(e.position), timestamp: new Date(e.timestamp).getTime() }))
      assert.deepEqual(plain(mine.eventsFrom), plain(theirs.eventsFrom))
      assert.deepEqual(plain(mine.eventsFor), plain(theirs.eventsFor))
      assert.equal(mine.bookmark, Number(theirs.bookmark))
      for (const ev of [...theirs.eventsFor, theirs.last]) assert.equal(kind(ev.timestamp), 'Date')
    }
  )
}

/** The JS kind of `position` evtstore's PostgreSQL providers hand out (docs/differences.md). */
const THEIR_PG_POSITION = { pg: 'string', postgres: 'string' }
/** The JS kind of a stored bookmark position from evtstore's PostgreSQL providers. */
const THEIR_PG_BOOKMARK = { pg: 'string', postgres: 'string' }
