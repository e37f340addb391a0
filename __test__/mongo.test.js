'use strict'
// MongoDB beyond the shared suites (which run on it through providers.js):
// several writer processes and a handler in another process, wake-ups from
// another process, a writer that died after taking positions, and evtstore's
// Timestamp positions migrated. Needs EVTSTORE_TEST_MONGO_URL
// (scripts/ferretdb.sh start); skipped with the reason without it.
const { it } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { root, provider: providerModule } = require('./pkg')
const { describeMongo, createMongoDatabase } = require('./mongo-server')
const { deferred, withTimeout, delay, makeDomain } = require('./helpers')
const { writersAgainstHandler, wakeUpsFromAnotherProcess } = require('./cross-process')

const FERRETDB_BIN = path.join(__dirname, '..', 'tools', 'ferretdb', 'bin', 'ferretdb-test-server')

/** A database of its own for one test, dropped after it. */
async function freshDb(t) {
  const db = await createMongoDatabase()
  t.after(() => db.drop())
  return db
}

/** A provider closed after the test. */
function providerOn(t, opts) {
  const provider = providerModule('mongo').createProvider(opts)
  t.after(() => provider.close())
  return provider
}

describeMongo('MongoDB across processes', () => {
  const MULTI =
    '4 writer processes (150 commands each, 8 in flight; 2 on a url, 2 on driver Collections) and a started ' +
    'handler in a 5th: every event handled once, in position order'
  it(MULTI, { timeout: 180000 }, async (t) => {
    const db = await freshDb(t)
    await providerModule('mongo').migrate({ url: db.url })
    await writersAgainstHandler(t, {
      store: { form: 'mongo-url', url: db.url },
      writers: { forms: ['mongo-url', 'mongo-collections', 'mongo-url', 'mongo-collections'], commands: 150, inFlight: 8, timeoutMs: 150000 },
      storedPositions: async () => {
        const stored = await db.db.collection('events').find({}).sort({ position: 1 }).project({ position: 1 }).toArray()
        return stored.map((d) => Number(d.position))
      },
      // every position claim (what an append takes from the counter) was ended, none skipped
      checkStore: async (_stored, expected) => {
        const side = await db.db.collection('events_positions').find({}).toArray()
        const claims = side.filter((d) => d._id.startsWith('c:')).map((d) => ({ from: Number(d._id.slice(2)), to: d.to }))
        claims.sort((a, b) => a.from - b.from)
        const ends = new Set(side.filter((d) => d._id.startsWith('e:')).map((d) => Number(d._id.slice(2))))
        for (const c of claims) assert.ok(ends.has(c.from), `claim ${c.from} never ended`)
        assert.equal(claims[0].from, 1)
        for (let i = 1; i < claims.length; i++) assert.equal(claims[i].from, claims[i - 1].to + 1, 'claims are contiguous')
        const last = claims[claims.length - 1].to
        return `positions 1..${last}, ${last - expected} of them ended empty by appends that failed`
      },
    })
  })

  it('a started handler is woken by appends of another process within 50 ms (probing, pollInterval 10 s)', { timeout: 60000 }, async (t) => {
    const db = await freshDb(t)
    await providerModule('mongo').migrate({ url: db.url })
    await wakeUpsFromAnotherProcess(t, {
      provider: providerOn(t, { url: db.url }),
      store: { form: 'mongo-url', url: db.url },
      count: 10,
      gapMs: 150,
      pollInterval: 10000,
      allWithinMs: 5000,
      medianAtMost: 50,
      eachUnder: 250,
    })
  })
})

describeMongo('MongoDB positions without transactions', () => {
  it('a writer that died after taking positions holds handlers back for abandonAfterMs, no longer', { timeout: 30000 }, async (t) => {
    const db = await freshDb(t)
    const bound = 600
    await providerModule('mongo').migrate({ url: db.url })
    const provider = providerOn(t, { url: db.url, abandonAfterMs: bound })
    const { createAggregate, createDomainV2, createCommands } = root()
    const user = createAggregate({ stream: 'users', create: () => ({}), fold: () => ({}) })
    const { domain, createHandler } = createDomainV2({ provider }, { user })
    const cmd = createCommands(domain.user, { login: async () => ({ type: 'loggedIn' }) })
    await cmd.login('before', {})

    // another process claimed positions 2 and 3 and died before inserting:
    // what its append does first, done here with the driver
    const claims = db.db.collection('events_positions')
    const last = (await claims.findOne({ _id: 'c:1' })).to
    assert.equal(last, 1)
    await claims.insertOne({ _id: `c:${last + 1}`, to: last + 2 })

    const seen = []
    const got = deferred()
    const handler = createHandler('after-dead-writer', ['users'], { pollInterval: 10000 })
    handler.handle('users', 'loggedIn', async (id, _ev, meta) => {
      seen.push({ id, position: meta.position, at: Date.now() })
      if (id === 'after') got.resolve()
    })
    handler.start()
    t.after(() => handler.stop())
    await delay(100)
    const appended = Date.now()
    await cmd.login('after', {})
    await withTimeout(got.promise, bound + 3000, 'the handler to go on past the dead writer')
    const waited = seen[seen.length - 1].at - appended
    t.diagnostic(`the event after the dead writer's positions was handled ${waited} ms after its append (abandonAfterMs ${bound})`)
    assert.deepEqual(
      seen.map((s) => [s.id, s.position]),
      [
        ['before', 1],
        ['after', 4],
      ]
    )
    assert.ok(waited >= bound - 150, `handled after ${waited} ms: held back less than the bound`)
    assert.ok(waited <= bound + 500, `handled after ${waited} ms: more than the bound and a probe`)
    const end = await claims.findOne({ _id: `e:${last + 1}` })
    assert.deepEqual(end, { _id: `e:${last + 1}`, to: last + 2, abandoned: true }, 'the claim was given up')
  })

  it("migrate turns evtstore's Timestamp positions into ordered integers once, events and bookmarks, through driver Collections", async (t) => {
    const db = await freshDb(t)
    const { Timestamp } = require('mongodb')
    const events = db.db.collection('events')
    const bookmarks = db.db.collection('bookmarks')
    const ts = (t, i) => new Timestamp({ t, i })
    // the documents evtstore 12.0.1 writes, inserted out of order
    const at = new Date('2024-05-06T07:08:09.123Z')
    await events.insertMany([
      { stream: 'users', aggregateId: 'u1', version: 2, position: ts(100, 2), timestamp: at, event: { type: 'renamed', name: 'b' } },
      { stream: 'posts', aggregateId: 'p1', version: 1, position: ts(100, 1), timestamp: at, event: { type: 'posted' } },
      { stream: 'users', aggregateId: 'u1', version: 1, position: ts(50, 7), timestamp: at, event: { type: 'created', name: 'a' } },
      { stream: 'users', aggregateId: 'u2', version: 1, position: ts(200, 1), timestamp: at, event: { type: 'created', name: 'c' } },
    ])
    await bookmarks.insertMany([
      { bookmark: 'half', position: ts(100, 1) },
      { bookmark: 'fresh', position: ts(1, 0) },
    ])
    const mongo = providerModule('mongo')
    await mongo.migrate(Promise.resolve(events), bookmarks)
    const provider = providerOn(t, { events, bookmarks })
    const read = await provider.getEventsFrom(['users', 'posts'], 0)
    assert.deepEqual(
      read.map((e) => [e.position, e.stream, e.aggregateId, e.version, e.event.type]),
      [
        [1, 'users', 'u1', 1, 'created'],
        [2, 'posts', 'p1', 1, 'posted'],
        [3, 'users', 'u1', 2, 'renamed'],
        [4, 'users', 'u2', 1, 'created'],
      ]
    )
    assert.equal(read[0].timestamp.getTime(), at.getTime())
    assert.equal(await provider.getPosition('half'), 2)
    assert.equal(await provider.getPosition('fresh'), 0)
    // a handler resumes from its migrated bookmark
    const { createAggregate, createDomainV2, createCommands } = root()
    const user = createAggregate({ stream: 'users', create: () => ({ name: '' }), fold: (ev) => ({ name: ev.name }) })
    const { domain, createHandler } = createDomainV2({ provider }, { user })
    const handled = []
    const handler = createHandler('half', ['users'])
    handler.handle('users', 'renamed', async (id) => handled.push(`renamed ${id}`))
    handler.handle('users', 'created', async (id) => handled.push(`created ${id}`))
    await handler.runOnce()
    assert.deepEqual(handled, ['renamed u1', 'created u2'])
    // once: a second migrate changes nothing; the aggregate goes on at version 3
    await mongo.migrate(events, Promise.resolve(bookmarks))
    assert.deepEqual(await provider.getEventsFrom(['users', 'posts'], 0), read)
    assert.equal((await domain.user.getAggregate('u1')).name, 'b')
    const cmd = createCommands(domain.user, { rename: async (c) => ({ type: 'renamed', name: c.name }) })
    assert.equal((await cmd.rename('u1', { name: 'd' })).version, 3)
    const stored = await events.findOne({ aggregateId: 'u1', version: 1 })
    assert.equal(stored.position, 1)
    assert.ok(stored.evtstorePosition.equals(ts(50, 7)), 'the old Timestamp is kept')
    const fresh = await bookmarks.findOne({ bookmark: 'fresh' })
    assert.equal(fresh.position, 0)
    assert.ok(fresh.evtstorePosition.equals(ts(1, 0)), "the bookmark's old Timestamp is kept")
  })

  const SERVER_LIMITS = [
    { what: 'an array in an array', payload: { type: 'grid', rows: [[1, 2], [3]], first: 'a' }, message: /nested arrays/ },
    { what: "a '.' in a field name", payload: { type: 'dotted', 'a.b': 1 }, message: /must not contain '\.'/ },
    { what: "a field name starting with '$'", payload: { type: 'dollar', $set: 1 }, message: /must not start with '\$'/ },
  ]
  for (const limit of SERVER_LIMITS) {
    it(`an event with ${limit.what} round-trips on MongoDB; FerretDB v1 refuses the append whole, as a DATABASE_ERROR, not a conflict`, async (t) => {
      const db = await freshDb(t)
      await providerModule('mongo').migrate({ url: db.url })
      const provider = providerOn(t, { url: db.url })
      const info = await db.db.admin().command({ buildInfo: 1 })
      const append = () => provider.append('grids', 'g1', 1, provider.createEvents('grids', 'g1', 1, [{ type: 'ok' }, limit.payload]))
      if (info.ferretdbVersion) {
        const err = await append().then(
          () => undefined,
          (e) => e
        )
        assert.ok(err, `FerretDB took ${limit.what}`)
        assert.equal(err.code, 'DATABASE_ERROR', err.message)
        assert.equal(err.retryable, false)
        assert.match(err.message, limit.message)
        assert.deepEqual(await provider.getEventsFor('grids', 'g1'), [], 'the first event of the append was removed again')
        t.diagnostic(`FerretDB ${info.ferretdbVersion}: ${err.message}`)
      } else {
        await append()
        assert.deepEqual((await provider.getEventsFor('grids', 'g1'))[1].event, limit.payload)
      }
    })
  }

  it('what MongoDB cannot store is refused with INVALID_EVENT before anything is written: a NUL in a field name, a document over 16 MiB', { timeout: 60000 }, async (t) => {
    const db = await freshDb(t)
    await providerModule('mongo').migrate({ url: db.url })
    const provider = providerOn(t, { url: db.url })
    const claimsBefore = await db.db.collection('events_positions').countDocuments({ _id: /^c:/ })
    const cases = [
      [{ type: 'ok', ['k\u0000']: 1 }, /field name "k\\0" holds a NUL/],
      [{ type: 'big', text: 'x'.repeat(16 * 1024 * 1024) }, /16 MiB/],
    ]
    for (const [event, message] of cases) {
      const err = await provider.append('odd', 'o1', 1, provider.createEvents('odd', 'o1', 1, [{ type: 'first' }, event])).then(
        () => undefined,
        (e) => e
      )
      assert.ok(err, 'stored')
      assert.equal(err.code, 'INVALID_EVENT', err.message)
      assert.match(err.message, message)
    }
    // NUL in values and in the type is stored as it is
    const odd = { type: 'a\u0000b', s: 'x\u0000y\b\u0001' }
    await provider.append('odd', 'o1', 1, provider.createEvents('odd', 'o1', 1, [odd]))
    assert.deepEqual(
      (await provider.getEventsFor('odd', 'o1')).map((e) => e.event),
      [odd]
    )
    const claimsAfter = await db.db.collection('events_positions').countDocuments({ _id: /^c:/ })
    assert.equal(claimsAfter, claimsBefore + 1, 'no position was claimed for the refused appends')
  })
})

/**
 * A FerretDB of this test's own (the binary scripts/ferretdb.sh builds), on a
 * free port and a folder of its own, that the test can stop and start again.
 */
async function ownServer(t) {
  const fs = require('node:fs')
  const os = require('node:os')
  const net = require('node:net')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evtstore-rs-ferretdb-'))
  const port = await new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
  let child
  const start = async () => {
    child = spawn(FERRETDB_BIN, ['-port', String(port), '-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    const ready = deferred()
    child.stdout.on('data', (d) => {
      out += d
      if (out.includes('ready ')) ready.resolve()
    })
    child.on('exit', () => ready.reject(new Error(`ferretdb exited: ${out}`)))
    await withTimeout(ready.promise, 10000, 'ferretdb to start')
  }
  const stop = async () => {
    const c = child
    if (!c || c.exitCode !== null || c.signalCode !== null) return
    const exited = new Promise((resolve) => c.on('exit', resolve))
    c.kill('SIGKILL')
    await exited
  }
  t.after(async () => {
    await stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  await start()
  return { url: `mongodb://127.0.0.1:${port}/restart?serverSelectionTimeoutMS=1000`, start, stop }
}

describeMongo('MongoDB drivers', () => {
  // evtstore takes Collections of the user's mongodb driver (4.x to 6.x): each
  // is only read for its connection string, database and collection names
  for (const mod of ['mongodb-4', 'mongodb-5', 'mongodb']) {
    it(`Collections of mongodb ${require(`${mod}/package.json`).version}: migrate, commands and getEventsFrom`, async (t) => {
      const db = await freshDb(t)
      const { MongoClient } = require(mod)
      const client = new MongoClient(db.url)
      t.after(() => client.close())
      const events = client.db().collection('app_events')
      const bookmarks = client.db().collection('app_bookmarks')
      const mongo = providerModule('mongo')
      await mongo.migrate(events, Promise.resolve(bookmarks))
      const provider = mongo.createProvider({ events, bookmarks })
      t.after(() => provider.close())
      const { userCmd } = makeDomain(provider)
      await userCmd.create('u1', { name: 'Ada' })
      await provider.setPosition('bm', 1)
      const stored = await db.db.collection('app_events').find({}).toArray()
      assert.deepEqual(
        stored.map((d) => [d.stream, d.aggregateId, d.version, d.event.type]),
        [['users', 'u1', 1, 'created']]
      )
      assert.equal((await db.db.collection('app_bookmarks').findOne({ bookmark: 'bm' })).position, 1)
    })
  }
})

describeMongo('MongoDB server stopped and restarted', () => {
  const fs = require('node:fs')
  const noBinary = fs.existsSync(FERRETDB_BIN) ? false : `no ${FERRETDB_BIN}: build it with scripts/ferretdb.sh build`
  it('under 4 writers and a started handler: the handler goes on, every stored event handled once, in order', { skip: noBinary, timeout: 90000 }, async (t) => {
    const server = await ownServer(t)
    const mongo = providerModule('mongo')
    await mongo.migrate({ url: server.url })
    const provider = providerOn(t, { url: server.url, abandonAfterMs: 1000 })
    const { createAggregate, createDomainV2, createCommands } = root()
    const user = createAggregate({ stream: 'users', create: () => ({}), fold: () => ({}) })
    const { domain, createHandler } = createDomainV2({ provider }, { user })
    const cmd = createCommands(domain.user, { login: async (c) => ({ type: 'loggedIn', n: c.n }) })
    const handled = []
    const handler = createHandler('restart', ['users'], { pollInterval: 100, retryDelay: 100 })
    handler.handle('users', 'loggedIn', async (_id, _ev, meta) => {
      handled.push(meta.position)
    })
    handler.start()
    t.after(() => handler.stop())

    let stored = 0
    const failures = new Map()
    let stopWriting = false
    const writer = async (w) => {
      for (let n = 0; !stopWriting; n++) {
        try {
          await cmd.login(`w${w}-${n % 5}`, { n })
          stored++
        } catch (err) {
          failures.set(err.code || err.name, (failures.get(err.code || err.name) || 0) + 1)
          if (err.name !== 'VersionError' && err.retryable !== true) throw err
          await delay(50)
        }
      }
    }
    const writers = Promise.all([0, 1, 2, 3].map(writer))
    await delay(1500)
    const before = stored
    await server.stop()
    await delay(1500)
    await server.start()
    await delay(2500)
    stopWriting = true
    await writers
    assert.ok(before > 0 && stored > before, `stored ${before} before the stop, ${stored} in all`)

    const { MongoClient } = require('mongodb')
    const client = new MongoClient(server.url)
    t.after(() => client.close())
    // a claim whose append's outcome is unknown (its connection broke) ends
    // only when the handler's reader gives it up, abandonAfterMs after it
    // first saw it, and removes what of it was stored: compare once every
    // claim has ended
    const counter = client.db().collection('events_positions')
    const settledBy = Date.now() + 15000
    let claims = []
    for (;;) {
      claims = await counter.find({}).toArray()
      const ends = new Set(claims.filter((d) => String(d._id).startsWith('e:')).map((d) => d._id.slice(2)))
      const open = claims.filter((d) => String(d._id).startsWith('c:') && !ends.has(d._id.slice(2)))
      if (open.length === 0 || Date.now() > settledBy) break
      await delay(100)
    }
    const abandoned = claims.filter((d) => d.abandoned === true).map((d) => [Number(d._id.slice(2)), d.to])
    if (abandoned.length > 0) t.diagnostic(`claims given up: ${JSON.stringify(abandoned)}`)
    const positions = (await client.db().collection('events').find({}).sort({ position: 1 }).toArray()).map((d) => d.position)
    const until = Date.now() + 10000
    while (handled.length < positions.length && Date.now() < until) await delay(50)
    assert.deepEqual(handled, positions, 'every stored event handled once, in order')
    assert.ok(positions.length >= stored, `${positions.length} stored events for ${stored} commands that resolved`)
    t.diagnostic(
      `${stored} commands resolved (${before} before the stop), ${positions.length} events stored and handled; ` +
        `failures while the server was away: ${JSON.stringify(Object.fromEntries(failures))}`
    )
  })
})
