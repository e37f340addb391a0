'use strict'
// PostgreSQL specifics: migrate (also over evtstore's own tables), missing
// tables, connection errors that say which setting was wrong, names that need
// percent-encoding, Unix sockets, stores shared in the process, wake-ups
// across processes, several writer processes against one started handler
// (no event skipped or repeated), and data compatibility both ways with
// evtstore@12.0.1 through its pg, postgres and knex (pg) providers.
//
// Needs the server of scripts/postgres.sh (EVTSTORE_TEST_PG_URL); see pg-server.js.
const { it } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const { provider: providerModule } = require('./pkg')
const { closeProvider } = require('./providers')
const { describePg, createDatabase, query, adminParts, admin, urlFor, ident } = require('./pg-server')
const {
  deferred,
  withTimeout,
  delay,
  assertCode,
  snapshot,
  makeDomain,
  runNode,
  readAndExtendEvtstoreRows,
} = require('./helpers')
const { writersAgainstHandler, wakeUpsFromAnotherProcess } = require('./cross-process')

const T = { timeout: 60000 }
const fixture = (name) => path.join(__dirname, 'fixtures', name)

/** Cleanups run last-registered first, after the test (databases are dropped after the providers on them close). */
function cleanups(t) {
  const fns = []
  t.after(async () => {
    for (const fn of fns.reverse()) await fn()
  })
  return (fn) => fns.push(fn)
}

/** A fresh database, dropped when the test ends. */
async function freshDb(t, later) {
  const db = await createDatabase()
  later(() => db.drop())
  return db
}

/** Our provider in one form on a database url, closed (with its driver) when the test ends. */
function openForm(later, form, url, opts = {}) {
  if (form === 'url') {
    const provider = providerModule('postgres').createProvider({ url, ...opts })
    later(() => closeProvider(provider))
    return { provider, driverOpts: { url }, module: 'postgres' }
  }
  if (form === 'postgres.js') {
    const sql = require('postgres')(url, { onnotice() {} })
    later(() => sql.end({ timeout: 1 }))
    const provider = providerModule('postgres').createProvider({ sql, ...opts })
    later(() => closeProvider(provider))
    return { provider, driverOpts: { sql }, module: 'postgres' }
  }
  if (form === 'pg Pool') {
    const { Pool } = require('pg')
    const pool = new Pool({ connectionString: url })
    later(() => pool.end())
    const provider = providerModule('pg').createProvider({ client: pool, ...opts })
    later(() => closeProvider(provider))
    return { provider, driverOpts: { client: pool }, module: 'pg' }
  }
  throw new Error(`unknown form ${form}`)
}

/** Columns ({ name: data_type }) of a table. */
async function columnsOf(url, table) {
  const { rows } = await query(
    url,
    'SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position',
    [table]
  )
  return Object.fromEntries(rows.map((r) => [r.column_name, r.data_type]))
}

/** Unique indexes of a table as "col,col" (the primary key included). */
async function uniqueIndexesOf(url, table) {
  const { rows } = await query(
    url,
    `SELECT i.relname AS name, array_agg(a.attname::text ORDER BY k.ord) AS cols
       FROM pg_index ix
       JOIN pg_class t ON t.oid = ix.indrelid
       JOIN pg_class i ON i.oid = ix.indexrelid
       CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
      WHERE t.relname = $1 AND ix.indisunique
      GROUP BY i.relname
      ORDER BY 2`,
    [table]
  )
  return rows.map((r) => r.cols.join(','))
}

/** A TCP port on 127.0.0.1 that nothing listens on. */
async function closedPort() {
  const server = net.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

const FORMS = ['url', 'postgres.js', 'pg Pool']

describePg('PostgreSQL migrate', () => {
  for (const form of FORMS) {
    it(`[${form}] migrate creates evtstore's layout, is idempotent and never drops data`, T, async (t) => {
      const later = cleanups(t)
      const db = await freshDb(t, later)
      const { provider, driverOpts, module } = openForm(later, form, db.url)
      const mod = providerModule(module)
      await mod.migrate({ ...driverOpts, events: 'events', bookmarks: 'bookmarks' })
      await mod.migrate({ ...driverOpts, events: 'events', bookmarks: 'bookmarks' })
      const { userCmd, createHandler } = makeDomain(provider)
      await userCmd.create('u1', { name: 'a' })
      await userCmd.loginTimes('u1', { n: 2 })
      await createHandler('kept', ['users']).runOnce()
      const before = await snapshot(provider)
      const bookmark = await provider.getPosition('kept')
      assert.ok(bookmark > 0)

      await mod.migrate({ ...driverOpts, events: 'events', bookmarks: 'bookmarks' })
      assert.deepEqual(await snapshot(provider), before)
      assert.equal(await provider.getPosition('kept'), bookmark)

      assert.deepEqual(await columnsOf(db.url, 'events'), {
        position: 'bigint',
        version: 'integer',
        stream: 'text',
        aggregate_id: 'text',
        timestamp: 'timestamp with time zone',
        event: 'text',
      })
      assert.deepEqual(await columnsOf(db.url, 'bookmarks'), { bookmark: 'text', position: 'bigint' })
      assert.deepEqual(await uniqueIndexesOf(db.url, 'events'), [
        'position',
        'stream,aggregate_id,version',
        'stream,position',
      ])
      assert.deepEqual(await uniqueIndexesOf(db.url, 'bookmarks'), ['bookmark'])
      const { rows } = await query(db.url, 'SELECT count(*)::int AS n FROM events')
      assert.equal(rows[0].n, 3)
    })
  }

  it('migrate through the url form alone uses the tables events and bookmarks; pg migratePool and migrateClient take custom names', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(t, later)
    await providerModule('postgres').migrate({ url: db.url })
    const { Pool, Client } = require('pg')
    const pool = new Pool({ connectionString: db.url })
    later(() => pool.end())
    await providerModule('pg').migratePool({ client: pool, events: 'pool_events', bookmarks: 'pool_bookmarks' })
    const client = new Client({ connectionString: db.url }) // never connected: only read
    await providerModule('pg').migrateClient({ client, events: 'client_events', bookmarks: 'client_bookmarks' })
    const { rows } = await query(
      db.url,
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
    )
    assert.deepEqual(
      rows.map((r) => r.table_name),
      // each bookmarks table brings its handler leases (docs/many-instances.md)
      ['bookmarks', 'bookmarks_leases', 'client_bookmarks', 'client_bookmarks_leases', 'client_events', 'events', 'pool_bookmarks', 'pool_bookmarks_leases', 'pool_events']
    )
    // two event tables in one schema: each keeps its own unique indexes
    for (const table of ['events', 'pool_events', 'client_events']) {
      assert.deepEqual(await uniqueIndexesOf(db.url, table), ['position', 'stream,aggregate_id,version', 'stream,position'])
    }
    const onClient = providerModule('pg').createProvider({ client, events: 'client_events', bookmarks: 'client_bookmarks' })
    later(() => closeProvider(onClient))
    await makeDomain(onClient).userCmd.create('u1', { name: 'a' })
    assert.equal((await query(db.url, 'SELECT count(*)::int AS n FROM client_events')).rows[0].n, 1)
    assert.equal((await query(db.url, 'SELECT count(*)::int AS n FROM events')).rows[0].n, 0)
  })

  for (const driver of ['pg', 'postgres']) {
    it(`[evtstore ${driver}] migrate on tables made by evtstore's migrate adds no duplicate index and keeps the data`, T, async (t) => {
      const later = cleanups(t)
      const db = await freshDb(t, later)
      const w = await evtstoreSide(driver, db.url, 'write')
      assert.equal(w.handler.read, 3)
      const indexesBefore = await uniqueIndexesOf(db.url, 'events')
      const countBefore = (await query(db.url, 'SELECT count(*)::int AS n FROM events')).rows[0].n
      assert.equal(countBefore, 3)

      await providerModule('postgres').migrate({ url: db.url })
      await providerModule('pg').migrate({ url: db.url, events: 'events', bookmarks: 'bookmarks' })
      assert.deepEqual(await uniqueIndexesOf(db.url, 'events'), indexesBefore)
      assert.deepEqual(indexesBefore, ['position', 'stream,aggregate_id,version', 'stream,position'])
      const { rows } = await query(db.url, "SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = 'events'")
      assert.equal(rows[0].n, 3, 'no index was added')
      assert.equal((await query(db.url, 'SELECT count(*)::int AS n FROM events')).rows[0].n, countBefore)
      assert.equal(
        Number((await query(db.url, "SELECT position FROM bookmarks WHERE bookmark = 'their-bm'")).rows[0].position),
        w.bookmark
      )
    })
  }

  it('a missing table gives MISSING_TABLE, a message that says to run migrate, and no VersionError', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(t, later)
    const expectMissing = (fn, table) => assertCode(fn, 'MISSING_TABLE', new RegExp(`${table}[\\s\\S]*migrate`))
    for (const form of FORMS) {
      const { provider } = openForm(later, form, db.url)
      await expectMissing(() => provider.getEventsFrom(['users'], 0), 'events')
      await expectMissing(() => provider.getPosition('bm'), 'bookmarks')
      await expectMissing(() => provider.setPosition('bm', 1), 'bookmarks')
      await expectMissing(() => makeDomain(provider).userCmd.create('u1', { name: 'a' }), 'events')
    }
    await providerModule('postgres').migrate({ url: db.url })
    const { provider } = openForm(later, 'url', db.url)
    assert.deepEqual(await provider.getEventsFrom(['users'], 0), [])
  })
})

describePg('PostgreSQL connection errors', () => {
  it('a wrong password gives AUTH_FAILED naming the user and where the password came from, never the password', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(t, later)
    const { host, port, user } = adminParts()
    const wrong = 'wrong-Pa55word'
    const check = async (make, from) => {
      const provider = make()
      later(() => closeProvider(provider))
      const err = await assertCode(() => provider.ready, 'AUTH_FAILED')
      assert.match(err.message, new RegExp(`"${user}"`), err.message)
      assert.ok(err.message.includes(from), `the message does not say the password came from ${from}: ${err.message}`)
      assert.ok(!err.message.includes(wrong), 'the password is in the message')
      assert.equal(err.connection.user, user)
      // every operation fails the same way, and so does migrate
      await assertCode(() => provider.getEventsFrom(['users'], 0), 'AUTH_FAILED')
      return err
    }
    const err = await check(
      () => providerModule('postgres').createProvider({ url: urlFor(db.name, { password: wrong }) }),
      'password from the url'
    )
    t.diagnostic(`url form: ${err.message.replace(/\n/g, ' ')}`)
    const { Pool } = require('pg')
    const pool = new Pool({ host, port, user, password: wrong, database: db.name })
    later(() => pool.end())
    await check(() => providerModule('pg').createProvider({ client: pool }), 'password from pool.options.password')
    const sql = require('postgres')({ host, port, user, pass: async () => wrong, database: db.name })
    later(() => sql.end({ timeout: 1 }))
    await check(() => providerModule('postgres').createProvider({ sql }), 'sql.options.pass (a function)')
    await assertCode(() => providerModule('pg').migrate({ url: urlFor(db.name, { password: wrong }) }), 'AUTH_FAILED')
  })

  it('a refused port gives CANNOT_CONNECT naming host:port and where they came from', T, async (t) => {
    const later = cleanups(t)
    const port = await closedPort()
    const { user, password } = adminParts()
    const provider = providerModule('postgres').createProvider({ url: urlFor('postgres', { port }) })
    later(() => closeProvider(provider))
    const started = Date.now()
    const err = await assertCode(() => provider.ready, 'CANNOT_CONNECT')
    t.diagnostic(`refused after ${Date.now() - started} ms: ${err.message.replace(/\n/g, ' ')}`)
    assert.ok(err.message.includes(`127.0.0.1:${port}`), err.message)
    const { Pool } = require('pg')
    const pool = new Pool({ host: '127.0.0.1', port, user, password })
    later(() => pool.end())
    const viaPool = providerModule('pg').createProvider({ client: pool })
    later(() => closeProvider(viaPool))
    const err2 = await assertCode(() => viaPool.getPosition('bm'), 'CANNOT_CONNECT')
    assert.ok(err2.message.includes(`127.0.0.1:${port}`), err2.message)
    assert.match(err2.message, /pool\.options\.port/)
  })

  it('an unknown database gives UNKNOWN_DATABASE naming it; once it exists, a new provider on the same url works', T, async (t) => {
    const later = cleanups(t)
    const name = `evtstore_t_missing_${process.pid}_${Date.now()}`
    const url = urlFor(name)
    const first = providerModule('postgres').createProvider({ url })
    later(() => closeProvider(first))
    const err = await assertCode(() => first.ready, 'UNKNOWN_DATABASE')
    assert.ok(err.message.includes(name), err.message)
    await admin().query(`CREATE DATABASE ${ident(name)}`)
    later(() => admin().query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`))
    await providerModule('postgres').migrate({ url })
    const second = providerModule('postgres').createProvider({ url })
    later(() => closeProvider(second))
    await makeDomain(second).userCmd.create('u1', { name: 'a' })
    assert.equal((await second.getEventsFor('users', 'u1')).length, 1)
  })
})

describePg('PostgreSQL names and sockets', () => {
  it('a user, password and database that need percent-encoding reach the server intact (url, postgres.js and pg forms)', T, async (t) => {
    const later = cleanups(t)
    const suffix = `${process.pid}_${Date.now()}`
    const role = `evt ü@:/?#% ${suffix}`
    const password = `p@ss:w/rd?#%&=+ ü'"\\ ${suffix}`
    const database = `evt db/ü?#%&= ${suffix}`
    await admin().query(`CREATE ROLE ${ident(role)} LOGIN PASSWORD '${password.replace(/'/g, "''")}'`)
    later(() => admin().query(`DROP ROLE IF EXISTS ${ident(role)}`))
    await admin().query(`CREATE DATABASE ${ident(database)} OWNER ${ident(role)}`)
    later(() => admin().query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`))
    const { host, port } = adminParts()
    const encoded = `postgres://${encodeURIComponent(role)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`

    await providerModule('postgres').migrate({ url: encoded })
    const { Pool } = require('pg')
    const pool = new Pool({ host, port, user: role, password, database })
    later(() => pool.end())
    const sql = require('postgres')({ host, port, user: role, pass: password, database })
    later(() => sql.end({ timeout: 1 }))
    const providers = [
      providerModule('postgres').createProvider({ url: encoded }),
      providerModule('pg').createProvider({ client: pool }),
      providerModule('postgres').createProvider({ sql }),
    ]
    for (const p of providers) later(() => closeProvider(p))
    let version = 0
    for (const p of providers) {
      const agg = await makeDomain(p).userCmd.login('u1', {})
      assert.equal(agg.version, ++version)
    }
    const { rows } = await admin().query(
      `SELECT usename, datname FROM pg_stat_activity WHERE usename = $1 AND datname = $2`,
      [role, database]
    )
    assert.ok(rows.length > 0, 'no connection of the role to the database')
  })

  it('tables in another schema through search_path: url options, postgres.js connection, pg options', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(t, later)
    await query(db.url, 'CREATE SCHEMA app')
    const { host, port, user, password } = adminParts()
    const url = `${db.url}?options=${encodeURIComponent('-c search_path=app')}`
    await providerModule('postgres').migrate({ url })
    const sql = require('postgres')({ host, port, user, pass: password, database: db.name, connection: { search_path: 'app' } })
    later(() => sql.end({ timeout: 1 }))
    const { Pool } = require('pg')
    const pool = new Pool({ host, port, user, password, database: db.name, options: '-c search_path=app' })
    later(() => pool.end())
    const providers = [
      providerModule('postgres').createProvider({ url }),
      providerModule('postgres').createProvider({ sql }),
      providerModule('pg').createProvider({ client: pool }),
    ]
    for (const p of providers) later(() => closeProvider(p))
    let version = 0
    for (const p of providers) assert.equal((await makeDomain(p).userCmd.login('u1', {})).version, ++version)
    const { rows } = await query(
      db.url,
      "SELECT table_schema, table_name FROM information_schema.tables WHERE table_name IN ('events', 'bookmarks') ORDER BY 2"
    )
    assert.deepEqual(
      rows.map((r) => `${r.table_schema}.${r.table_name}`),
      ['app.bookmarks', 'app.events']
    )
    assert.equal((await query(db.url, 'SELECT count(*)::int AS n FROM app.events')).rows[0].n, 3)
  })

  it('a Unix socket: pg with host=<dir>, postgres.js with path, and the url with host=', T, async (t) => {
    const dir = process.env.EVTSTORE_PG_DIR || '/tmp/evtstore-rs-pg'
    const { port, user } = adminParts()
    const socket = path.join(dir, `.s.PGSQL.${port}`)
    if (!fs.existsSync(socket)) return t.skip(`no socket at ${socket} (the server was not started by scripts/postgres.sh)`)
    const later = cleanups(t)
    const db = await freshDb(t, later)
    const socketUrl = `postgres://${encodeURIComponent(user)}@/${db.name}?host=${encodeURIComponent(dir)}&port=${port}`
    await providerModule('postgres').migrate({ url: socketUrl })
    const { Pool } = require('pg')
    const pool = new Pool({ host: dir, port, user, database: db.name })
    later(() => pool.end())
    const sql = require('postgres')({ path: socket, user, database: db.name })
    later(() => sql.end({ timeout: 1 }))
    const providers = [
      providerModule('postgres').createProvider({ url: socketUrl }),
      providerModule('pg').createProvider({ client: pool }),
      providerModule('postgres').createProvider({ sql }),
    ]
    for (const p of providers) later(() => closeProvider(p))
    let version = 0
    for (const p of providers) assert.equal((await makeDomain(p).userCmd.login('u1', {})).version, ++version)
    const { rows } = await admin().query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND client_port = -1 AND application_name LIKE 'evtstore-rs%'",
      [db.name]
    )
    assert.ok(rows[0].n > 0, 'no connection over the Unix socket')
  })
})

/**
 * The CA of the server's certificate (scripts/postgres.sh makes both, for
 * 127.0.0.1 and localhost, and turns TLS on). Without it the test is skipped with the reason, or fails under CI.
 */
async function serverCa(t) {
  const dir = process.env.EVTSTORE_PG_DIR || '/tmp/evtstore-rs-pg'
  const file = path.join(dir, 'ca.crt')
  const { rows } = await admin().query('SHOW ssl')
  let missing
  if (rows[0].ssl !== 'on') missing = 'the server has TLS off'
  else if (!fs.existsSync(file)) missing = `no certificate authority at ${file}`
  if (missing) {
    const reason = `${missing} (scripts/postgres.sh start turns TLS on)`
    if (process.env.CI === 'true') assert.fail(`${reason}: under CI=true the TLS tests must run`)
    t.skip(reason)
    return undefined
  }
  return { file, pem: fs.readFileSync(file, 'utf8') }
}

/** Whether our connections to the database use TLS: [true] or [false], one entry per distinct value. */
async function tlsOfOurConnections(dbName) {
  const { rows } = await admin().query(
    `SELECT DISTINCT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid
      WHERE a.datname = $1 AND a.application_name LIKE 'evtstore-rs%'`,
    [dbName]
  )
  return rows.map((r) => r.ssl)
}

describePg('PostgreSQL TLS', () => {
  it('encrypts without checking the certificate: url sslmode=require, postgres.js ssl "require", pg ssl { rejectUnauthorized: false }', T, async (t) => {
    if (!(await serverCa(t))) return
    const { host, port, user, password } = adminParts()
    const later = cleanups(t)
    const makers = [
      (db) => providerModule('postgres').createProvider({ url: `${db.url}?sslmode=require` }),
      (db) => {
        const sql = require('postgres')({ host, port, user, pass: password, database: db.name, ssl: 'require' })
        later(() => sql.end({ timeout: 1 }))
        return providerModule('postgres').createProvider({ sql })
      },
      (db) => {
        const { Pool } = require('pg')
        const pool = new Pool({ host, port, user, password, database: db.name, ssl: { rejectUnauthorized: false } })
        later(() => pool.end())
        return providerModule('pg').createProvider({ client: pool })
      },
    ]
    for (const make of makers) {
      const db = await freshDb(t, later)
      await providerModule('postgres').migrate({ url: `${db.url}?sslmode=require` })
      const provider = make(db)
      later(() => closeProvider(provider))
      await makeDomain(provider).userCmd.create('u1', { name: 'a' })
      assert.deepEqual(await tlsOfOurConnections(db.name), [true])
    }
  })

  it('checks certificate and host with the server CA given as PEM (pg and postgres.js ssl.ca) or as a file (url sslrootcert)', T, async (t) => {
    const ca = await serverCa(t)
    if (!ca) return
    const { host, port, user, password } = adminParts()
    const later = cleanups(t)
    const makers = [
      (db) =>
        providerModule('postgres').createProvider({
          url: `${db.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca.file)}`,
        }),
      (db) => {
        const sql = require('postgres')({ host, port, user, pass: password, database: db.name, ssl: { ca: ca.pem } })
        later(() => sql.end({ timeout: 1 }))
        return providerModule('postgres').createProvider({ sql })
      },
      (db) => {
        const { Pool } = require('pg')
        const pool = new Pool({ host, port, user, password, database: db.name, ssl: { ca: Buffer.from(ca.pem) } })
        later(() => pool.end())
        return providerModule('pg').createProvider({ client: pool })
      },
    ]
    for (const make of makers) {
      const db = await freshDb(t, later)
      await providerModule('postgres').migrate({ url: `${db.url}?sslmode=require` })
      const provider = make(db)
      later(() => closeProvider(provider))
      await makeDomain(provider).userCmd.create('u1', { name: 'a' })
      assert.deepEqual(await tlsOfOurConnections(db.name), [true])
    }
  })

  it('ssl: true without the CA fails with CANNOT_CONNECT saying sslmode verify-full came from pool.options.ssl', T, async (t) => {
    if (!(await serverCa(t))) return
    const { host, port, user, password } = adminParts()
    const later = cleanups(t)
    const { Pool } = require('pg')
    const pool = new Pool({ host, port, user, password, database: 'postgres', ssl: true })
    later(() => pool.end())
    const provider = providerModule('pg').createProvider({ client: pool })
    later(() => closeProvider(provider))
    const err = await assertCode(() => provider.ready, 'CANNOT_CONNECT')
    assert.match(err.message, /sslmode verify-full \(from pool\.options\.ssl\)/)
    t.diagnostic(err.message.replace(/\n/g, ' '))
  })

  it('pg without ssl does not encrypt (sslmode disable, as pg does)', T, async (t) => {
    if (!(await serverCa(t))) return
    const later = cleanups(t)
    const db = await freshDb(t, later)
    const { provider, driverOpts } = openForm(later, 'pg Pool', db.url)
    await providerModule('pg').migrate({ ...driverOpts, events: 'events', bookmarks: 'bookmarks' })
    await makeDomain(provider).userCmd.create('u1', { name: 'a' })
    assert.deepEqual(await tlsOfOurConnections(db.name), [false])
  })
})

describePg('PostgreSQL reads', () => {
  it('rows another program wrote with NULL version, timestamp or event read back as null, the epoch and null', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(t, later)
    const { provider } = openForm(later, 'url', db.url)
    await providerModule('postgres').migrate({ url: db.url })
    const [stored] = await provider.append('users', 'u1', 1, [{ type: 'created' }])
    await query(db.url, "INSERT INTO events (version, stream, aggregate_id, timestamp, event) VALUES (NULL, 'users', 'u1', NULL, NULL)")
    for (const read of [await provider.getEventsFor('users', 'u1'), await provider.getEventsFrom('users', 0)]) {
      assert.equal(read.length, 2)
      assert.deepEqual(read[0].event, { type: 'created' })
      assert.equal(read[0].version, 1)
      assert.equal(read[0].timestamp.getTime(), stored.timestamp.getTime())
      assert.equal(read[1].position, stored.position + 1)
      assert.equal(read[1].version, null)
      assert.equal(read[1].timestamp.getTime(), 0)
      assert.equal(read[1].event, null)
      assert.equal(read[1].stream, 'users')
      assert.equal(read[1].aggregateId, 'u1')
    }
  })
})

describePg('PostgreSQL stores in one process', () => {
  it('providers on the same database share events and bookmarks, whatever form opened them', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(t, later)
    await providerModule('postgres').migrate({ url: db.url })
    const [a, b, c] = FORMS.map((form) => openForm(later, form, db.url).provider)
    await makeDomain(a).userCmd.create('u1', { name: 'a' })
    await makeDomain(b).userCmd.login('u1', {})
    assert.equal((await makeDomain(c).userCmd.login('u1', {})).version, 3)
    await b.setPosition('shared', 2)
    assert.equal(await a.getPosition('shared'), 2)
    assert.equal(await c.getPosition('shared'), 2)
    assert.deepEqual(await snapshot(a), await snapshot(b))
    assert.deepEqual(await snapshot(a), await snapshot(c))
    const { VersionError } = require('./pkg').root()
    const err = await a.append('users', 'u1', 3, b.createEvents('users', 'u1', 3, [{ type: 'loggedIn' }])).then(
      () => undefined,
      (e) => e
    )
    assert.ok(err instanceof VersionError, `expected a VersionError, got ${err && err.stack}`)
  })

  it('closing one of two providers on the same url leaves the other working; closing the last releases its connections', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(t, later)
    await providerModule('postgres').migrate({ url: db.url })
    const a = providerModule('postgres').createProvider({ url: db.url })
    const b = providerModule('pg').createProvider({ url: db.url })
    later(() => closeProvider(a))
    later(() => closeProvider(b))
    await makeDomain(a).userCmd.create('u1', { name: 'a' })
    const handler = makeDomain(b).createHandler('h', ['users'])
    handler.handle('users', 'created', () => {})
    handler.start() // the LISTEN connection
    await handler.stop()
    await a.close()
    assert.equal((await makeDomain(b).userCmd.login('u1', {})).version, 2)
    const ours = async () =>
      (
        await admin().query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'evtstore-rs%'",
          [db.name]
        )
      ).rows[0].n
    assert.ok((await ours()) > 0)
    await b.close()
    const started = Date.now()
    let n = await ours()
    while (n > 0 && Date.now() - started < 5000) {
      await delay(50)
      n = await ours()
    }
    if (n > 0) {
      const { rows } = await admin().query(
        "SELECT application_name, state, query, backend_start FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'evtstore-rs%'",
        [db.name]
      )
      assert.fail(`connections are still open 5 s after the last provider closed: ${JSON.stringify(rows)}`)
    }
    t.diagnostic(`connections gone ${Date.now() - started} ms after the last close`)
    await assertCode(() => b.getEventsFrom(['users'], 0), 'STORE_CLOSED')
  })

  it('a started handler on provider A is woken by an append through provider B (another form) at once', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(t, later)
    await providerModule('postgres').migrate({ url: db.url })
    const a = openForm(later, 'url', db.url).provider
    const b = openForm(later, 'pg Pool', db.url).provider
    // a long poll interval: the append itself must wake the handler
    const handler = makeDomain(a).createHandler('woken', ['users'], { pollInterval: 5000 })
    const first = deferred()
    const timings = []
    let next = deferred()
    handler.handle('users', 'created', () => first.resolve())
    handler.handle('users', 'loggedIn', () => next.resolve(performance.now()))
    handler.start()
    later(() => handler.stop())
    const onB = makeDomain(b)
    await onB.userCmd.create('u1', { name: 'a' })
    await withTimeout(first.promise, 3000, 'the first event')
    for (let i = 0; i < 5; i++) {
      await delay(30) // let the handler go idle
      next = deferred()
      const sent = performance.now()
      await onB.userCmd.login('u1', {})
      timings.push((await withTimeout(next.promise, 3000, 'the next event')) - sent)
    }
    const sorted = [...timings].sort((x, y) => x - y)
    t.diagnostic(`handled ${sorted.map((x) => x.toFixed(1)).join(', ')} ms after the append through provider B`)
    assert.ok(sorted[sorted.length - 1] < 300, `handled after ${sorted} ms`)
  })
})

describePg('PostgreSQL across processes', () => {
  it('a started handler is woken by another process’s append through NOTIFY, long before pollInterval', T, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(t, later)
    await providerModule('postgres').migrate({ url: db.url })
    const { provider } = openForm(later, 'url', db.url)
    await wakeUpsFromAnotherProcess(t, {
      provider,
      store: { form: 'postgres-url', url: db.url },
      count: 8,
      gapMs: 150,
      pollInterval: 5000,
      eachUnder: 1000,
      why: 'not woken by NOTIFY',
    })
  })

  const MULTI =
    '4 writer processes (200 commands each, 8 in flight) and a started handler in a 5th: ' +
    'every event handled once, in position order'
  it(MULTI, { timeout: 120000 }, async (t) => {
    const later = cleanups(t)
    const db = await freshDb(t, later)
    await providerModule('postgres').migrate({ url: db.url })
    await writersAgainstHandler(t, {
      store: { form: 'postgres-url', url: db.url },
      writers: { forms: ['postgres-url', 'postgres.js', 'pg-pool', 'postgres-url'], commands: 200, inFlight: 8, timeoutMs: 100000 },
      storedPositions: async () => {
        const { rows } = await query(db.url, 'SELECT position FROM events ORDER BY position')
        return rows.map((r) => Number(r.position))
      },
    })
  })
})

/** Runs one step of fixtures/evtstore-server-side.js (the original package) on a database. */
async function evtstoreSide(driver, url, step) {
  const res = await runNode(fixture('evtstore-server-side.js'), [driver, url, step], { timeoutMs: 30000 })
  assert.equal(res.code, 0, `evtstore ${driver} step ${step} failed:\n${res.stderr}`)
  return JSON.parse(res.stdout.trim().split('\n').pop())
}

describePg('PostgreSQL data compatibility with evtstore@12.0.1', () => {
  // evtstore through its pg and postgres providers, and through its knex provider with pg
  for (const driver of ['pg', 'postgres', 'knex-pg']) {
    const form = { pg: 'pg Pool', postgres: 'postgres.js', 'knex-pg': 'url' }[driver]

    it(`[evtstore ${driver}] rows written by evtstore are read and extended by us`, T, async (t) => {
      const later = cleanups(t)
      const db = await freshDb(t, later)
      const w = await evtstoreSide(driver, db.url, 'write')
      assert.equal(w.handler.read, 3)
      assert.ok(w.bookmark > 0)

      await providerModule('postgres').migrate({ url: db.url }) // harmless on evtstore's tables
      const { provider } = openForm(later, form, db.url)
      const positions = await readAndExtendEvtstoreRows(provider, w)

      // and evtstore reads what we appended
      const r = await evtstoreSide(driver, db.url, 'read')
      assert.equal(r.u1.version, 3)
      assert.equal(r.u1.logins, 2)
      assert.equal(r.handler.read, 1)
      assert.deepEqual(r.handler.seen, [['u1', 'loggedIn', 3]])
      assert.equal(r.bookmarks['our-bm'], positions[3])
    })

    it(`[evtstore ${driver}] rows written by us are read and extended by evtstore`, T, async (t) => {
      const later = cleanups(t)
      const db = await freshDb(t, later)
      const { provider, driverOpts, module } = openForm(later, form, db.url)
      await providerModule(module).migrate({ ...driverOpts, events: 'events', bookmarks: 'bookmarks' })
      const ours = makeDomain(provider)
      const writeStart = Date.now()
      await ours.userCmd.create('u1', { name: 'a' })
      await ours.userCmd.loginTimes('u1', { n: 2 })
      await ours.userCmd.create('u2', { name: 'b' })
      const writeEnd = Date.now()
      assert.equal(await ours.createHandler('our-bm', ['users']).runOnce(), 4)
      const ourBookmark = await provider.getPosition('our-bm')
      const before = await snapshot(provider, ['users'])

      const r = await evtstoreSide(driver, db.url, 'read')
      assert.deepEqual(
        { name: r.u1.name, enabled: r.u1.enabled, logins: r.u1.logins, version: r.u1.version },
        { name: 'a', enabled: true, logins: 2, version: 3 }
      )
      assert.deepEqual(
        r.events.map((e) => [e.aggregateId, e.version, e.position, e.event]),
        before.map((e) => [e.aggregateId, e.version, e.position, e.event])
      )
      for (const e of r.events) {
        assert.ok(
          e.timestamp >= writeStart - 5 && e.timestamp <= writeEnd + 5,
          `evtstore reads timestamp ${e.timestamp}, written in [${writeStart}, ${writeEnd}]`
        )
      }
      assert.deepEqual(
        r.events.map((e) => e.timestamp),
        before.map((e) => e.timestamp)
      )
      assert.equal(r.bookmarks['our-bm'], ourBookmark)
      assert.equal(r.handler.read, 4)

      const x = await evtstoreSide(driver, db.url, 'extend')
      assert.equal(x.next.version, 4)
      const agg = await ours.domain.user.getAggregate('u1')
      assert.equal(agg.version, 4)
      assert.equal(agg.logins, 3)
      assert.equal((await ours.userCmd.login('u1', {})).version, 5)
      const handler = ours.createHandler('our-bm', ['users'])
      const seen = []
      handler.handle('users', 'loggedIn', (id, ev, meta) => seen.push(meta.version))
      assert.equal(await handler.runOnce(), 2)
      assert.deepEqual(seen, [4, 5])
    })
  }
})
