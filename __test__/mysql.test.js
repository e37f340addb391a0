'use strict'
// MySQL/MariaDB specifics: migrate (evtstore's knex layout, also over tables
// evtstore made), missing tables, connection errors with their own codes,
// wake-ups across processes, several writer processes against one started
// handler (no event skipped or repeated), and data compatibility both ways
// with evtstore@12.0.1 through its knex provider (mysql2).
//
// Needs the server of scripts/mariadb.sh (EVTSTORE_TEST_MYSQL_URL); see mysql-server.js.
const { it } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { provider: providerModule } = require('./pkg')
const { closeProvider } = require('./providers')
const { describeMysql, createMysqlDatabase, query, serverParts } = require('./mysql-server')
const { assertCode, snapshot, makeDomain, runNode, readAndExtendEvtstoreRows } = require('./helpers')
const { writersAgainstHandler, wakeUpsFromAnotherProcess } = require('./cross-process')

const T = { timeout: 60000 }
const fixture = (name) => path.join(__dirname, 'fixtures', name)
const mysql = () => providerModule('mysql')

/** Cleanups run last-registered first, after the test. */
function cleanups(t) {
  const fns = []
  t.after(async () => {
    for (const fn of fns.reverse()) await fn()
  })
  return (fn) => fns.push(fn)
}

async function freshDb(later) {
  const db = await createMysqlDatabase()
  later(() => db.drop())
  return db
}

function open(later, url, opts = {}) {
  const provider = mysql().createProvider({ url, ...opts })
  later(() => closeProvider(provider))
  return provider
}

/** Column name -> type, and index name -> [unique, columns], of a table. */
async function layout(url, table) {
  const columns = await query(
    url,
    'SELECT COLUMN_NAME AS c, COLUMN_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [table]
  )
  const indexes = await query(
    url,
    "SELECT INDEX_NAME AS i, MIN(NON_UNIQUE) AS n, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) AS cols FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? GROUP BY INDEX_NAME ORDER BY INDEX_NAME",
    [table]
  )
  return {
    columns: Object.fromEntries(/** @type {any[]} */ (columns).map((r) => [r.c, r.t])),
    indexes: Object.fromEntries(/** @type {any[]} */ (indexes).map((r) => [r.i, [Number(r.n) === 0, r.cols]])),
  }
}

/** Runs one step of fixtures/evtstore-server-side.js (the original package, knex with mysql2) on a database. */
async function evtstoreSide(url, step) {
  const res = await runNode(fixture('evtstore-server-side.js'), ['knex-mysql2', url, step], { timeoutMs: 30000 })
  assert.equal(res.code, 0, `evtstore step ${step} failed:\n${res.stderr}`)
  return JSON.parse(res.stdout.trim().split('\n').pop())
}

describeMysql('MySQL migrate', () => {
  it("migrate creates evtstore's knex layout, is idempotent, and adds nothing to tables evtstore made", T, async (t) => {
    const later = cleanups(t)
    const ours = await freshDb(later)
    await mysql().migrate({ url: ours.url })
    await mysql().migrate({ url: ours.url })
    const theirs = await freshDb(later)
    await evtstoreSide(theirs.url, 'migrate')
    const before = await layout(theirs.url, 'events')
    await mysql().migrate({ url: theirs.url })
    assert.deepEqual(await layout(theirs.url, 'events'), before, "migrate changed evtstore's table")
    const mine = await layout(ours.url, 'events')
    assert.deepEqual(mine.columns, before.columns, "the column types are not those of evtstore's knex migrate")
    assert.deepEqual(mine.indexes, before.indexes, "the indexes are not those of evtstore's knex migrate")
    assert.deepEqual((await layout(ours.url, 'bookmarks')).columns, (await layout(theirs.url, 'bookmarks')).columns)
  })

  it('a missing table gives MISSING_TABLE, a message that says to run migrate, and no VersionError', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(later)
    const provider = open(later, db.url)
    const { userCmd } = makeDomain(provider)
    await assertCode(() => userCmd.create('u1', { name: 'a' }), 'MISSING_TABLE', /table "events" does not exist in mysql:\/\/.*run migrate\(\) first/)
    await assertCode(() => provider.getPosition('b'), 'MISSING_TABLE', /"bookmarks"/)
  })
})

describeMysql('MySQL connection errors', () => {
  it('a wrong password, an unknown database, a refused port and a bad url each have their own code', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(later)
    const url = new URL(db.url)
    const variant = (/** @type {(u: URL) => void} */ change) => {
      const u = new URL(url)
      change(u)
      return u.toString()
    }
    const read = (/** @type {string} */ u) => open(later, u).getPosition('x')
    const wrong = await assertCode(() => read(variant((u) => (u.password = 'wrong-secret'))), 'AUTH_FAILED', /rejected user "evtstore"/)
    assert.ok(!String(wrong.message).includes('wrong-secret'), 'the message repeats the password')
    assert.equal(wrong.retryable, false)
    await assertCode(() => read(variant((u) => (u.pathname = '/no_such_db'))), 'UNKNOWN_DATABASE', /"no_such_db"/)
    const refused = await assertCode(() => read(variant((u) => (u.port = '1'))), 'CANNOT_CONNECT', /127\.0\.0\.1:1/)
    assert.equal(refused.retryable, true)
    assert.throws(() => mysql().createProvider({ url: 'postgres://x@h/db' }), /must start with mysql:\/\//)
    assert.throws(() => mysql().createProvider({ url: 'mysql://u@h/db?ssl-mode=sometimes' }), /ssl-mode "sometimes"/)
  })

  it('knex mysql2 with its connection as an object, a string and a function reaches the same database', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(later)
    const { host, port, user, password } = serverParts()
    const knex = require('knex')
    const forms = [
      { host, port, user, password, database: db.name },
      db.url,
      () => ({ host, port, user, password, database: db.name }),
    ]
    const knexProvider = providerModule('knex')
    let n = 0
    for (const connection of forms) {
      const k = knex({ client: 'mysql2', connection })
      later(() => k.destroy())
      if (n === 0) await knexProvider.migrate({ client: k, events: 'events', bookmarks: 'bookmarks' })
      const provider = knexProvider.createProvider({ events: () => k('events'), bookmarks: () => k('bookmarks') })
      later(() => closeProvider(provider))
      await provider.setPosition('form', ++n)
      assert.equal(await provider.getPosition('form'), n)
    }
    const rows = await query(db.url, "SELECT position FROM bookmarks WHERE bookmark = 'form'")
    assert.equal(Number(/** @type {any[]} */ (rows)[0].position), 3)
  })
})

describeMysql('MySQL across processes', () => {
  it('a started handler is woken by another process’s append within 50 ms (probing), long before pollInterval', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(later)
    await mysql().migrate({ url: db.url })
    await wakeUpsFromAnotherProcess(t, {
      provider: open(later, db.url),
      store: { form: 'mysql-url', url: db.url },
      count: 8,
      gapMs: 150,
      pollInterval: 5000,
      medianAtMost: 50,
      eachUnder: 500,
    })
  })

  const MULTI =
    '4 writer processes (url and knex mysql2, 200 commands each, 8 in flight) and a started handler in a 5th: ' +
    'every event handled once, in position order'
  it(MULTI, { timeout: 120000 }, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(later)
    await mysql().migrate({ url: db.url })
    await writersAgainstHandler(t, {
      store: { form: 'mysql-url', url: db.url },
      writers: { forms: ['mysql-url', 'knex-mysql2', 'mysql-url', 'knex-mysql2'], commands: 200, inFlight: 8, timeoutMs: 100000 },
      storedPositions: async () => {
        const rows = /** @type {any[]} */ (await query(db.url, 'SELECT position FROM events ORDER BY position'))
        return rows.map((r) => Number(r.position))
      },
    })
  })
})

describeMysql('MySQL data compatibility with evtstore@12.0.1 (knex, mysql2)', () => {
  it('rows written by evtstore are read and extended by us, and evtstore reads ours', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(later)
    const w = await evtstoreSide(db.url, 'write')
    assert.equal(w.handler.read, 3)
    await mysql().migrate({ url: db.url }) // harmless on evtstore's tables
    const provider = open(later, db.url)
    const positions = await readAndExtendEvtstoreRows(provider, { ...w, resolution: 1000 })
    const r = await evtstoreSide(db.url, 'read')
    assert.equal(r.u1.version, 3)
    assert.equal(r.u1.logins, 2)
    assert.deepEqual(r.handler.seen, [['u1', 'loggedIn', 3]])
    assert.equal(r.bookmarks['our-bm'], positions[3])
  })

  it('rows written by us are read and extended by evtstore', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(later)
    await mysql().migrate({ url: db.url })
    const provider = open(later, db.url)
    const ours = makeDomain(provider)
    await ours.userCmd.create('u1', { name: 'a' })
    await ours.userCmd.loginTimes('u1', { n: 2 })
    await ours.userCmd.create('u2', { name: 'b' })
    assert.equal(await ours.createHandler('our-bm', ['users']).runOnce(), 4)
    const before = await snapshot(provider, ['users'])
    const r = await evtstoreSide(db.url, 'read')
    assert.deepEqual(
      { name: r.u1.name, logins: r.u1.logins, version: r.u1.version },
      { name: 'a', logins: 2, version: 3 }
    )
    assert.deepEqual(
      r.events.map((e) => [e.aggregateId, e.version, e.position, e.event, e.timestamp]),
      before.map((e) => [e.aggregateId, e.version, e.position, e.event, e.timestamp])
    )
    assert.equal(r.bookmarks['our-bm'], await provider.getPosition('our-bm'))
    const x = await evtstoreSide(db.url, 'extend')
    assert.equal(x.next.version, 4)
    assert.equal((await ours.domain.user.getAggregate('u1')).logins, 3)
    assert.equal((await ours.userCmd.login('u1', {})).version, 5)
  })
})
