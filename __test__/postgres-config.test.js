'use strict'
// How the PostgreSQL adapter reads connection settings from a url, a
// postgres.js instance and a node-postgres Pool or Client, and the typed
// options it hands to the Rust core (certificates as PEM text, no url). No
// server is needed: the drivers connect lazily, and nothing here runs a query.
const { describe, it, after } = require('node:test')
const assert = require('node:assert/strict')
const os = require('node:os')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { ROOT, provider: providerModule } = require('./pkg')
const { assertCode } = require('./helpers')

const ADAPTER = path.join(ROOT, 'lib', 'engines', 'postgres')
const config = {
  ...require(path.join(ADAPTER, 'url')),
  ...require(path.join(ADAPTER, 'postgres-js')),
  ...require(path.join(ADAPTER, 'node-postgres')),
  ...require(ADAPTER),
}
const TABLES = { events: 'events', bookmarks: 'bookmarks' }

// pg takes its default user from $USER when it is loaded (postgres.js and libpq
// ask the OS): give it the OS user so that the comparisons below mean something
if (!process.env.USER) process.env.USER = os.userInfo().username

const PG_ENV = ['PGHOST', 'PGPORT', 'PGUSER', 'PGUSERNAME', 'PGPASSWORD', 'PGDATABASE', 'PGSSLMODE', 'PGSSL', 'PGOPTIONS']

/** Runs fn with exactly these PG* environment variables set (the others unset), then restores them. */
async function withEnv(vars, fn) {
  const saved = {}
  for (const k of PG_ENV) {
    saved[k] = process.env[k]
    delete process.env[k]
  }
  Object.assign(process.env, vars)
  try {
    return await fn()
  } finally {
    for (const k of PG_ENV) {
      if (saved[k] === undefined) delete process.env[k]
      else process.env[k] = saved[k]
    }
  }
}

/** PEM text handed in goes to the store as text: no file of this process is written for it. */
function assertNoPemFile() {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user'
  const dir = path.join(os.tmpdir(), `evtstore-rs-tls-${uid}`)
  const ours = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith(`${process.pid}-`)) : []
  assert.deepEqual(ours, [], 'a certificate was written to a temporary file')
}

function osUser() {
  return os.userInfo().username
}

/** The connection part of the settings (no `from`, no pool size); the optional ones only when set. */
function core(s) {
  const out = {
    host: s.host,
    port: s.port,
    user: s.user,
    password: s.password,
    database: s.database,
    sslmode: s.sslmode,
  }
  for (const key of ['sslRootCert', 'sslCert', 'sslKey', 'options', 'applicationName', 'connectTimeout']) {
    if (s[key] !== undefined) out[key] = s[key]
  }
  return out
}

const postgresJs = () => require('postgres')
const pg = () => require('pg')

/** postgres.js instances made by a test are ended when the file ends (none connects). */
const sqls = []
function makeSql(...args) {
  const sql = postgresJs()(...args)
  sqls.push(sql)
  return sql
}
const pools = []
function makePool(opts) {
  const pool = new (pg().Pool)(opts)
  pools.push(pool)
  return pool
}
after(async () => {
  await Promise.all(sqls.map((s) => s.end({ timeout: 0 })))
  await Promise.all(pools.map((p) => p.end()))
})

describe('PostgreSQL settings from a url', () => {
  it('reads host, port, user, password, database and sslmode, percent-decoding them', async () => {
    await withEnv({}, () => {
      const s = config.fromUrl('postgresql://us%40er:p%3As%2Fs%20w@db.example.com:6543/my%20db%2Fx?sslmode=verify-full', 't')
      assert.deepEqual(core(s), {
        host: 'db.example.com',
        port: 6543,
        user: 'us@er',
        password: 'p:s/s w',
        database: 'my db/x',
        sslmode: 'verify-full',
      })
      assert.equal(s.from.user, 'the url')
      assert.equal(s.from.sslmode, 'the url (sslmode=)')
    })
  })

  it('fills what the url leaves out from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE and PGSSLMODE', async () => {
    await withEnv(
      { PGHOST: 'envhost', PGPORT: '7777', PGUSER: 'envuser', PGPASSWORD: 'envpw', PGDATABASE: 'envdb', PGSSLMODE: 'require' },
      () => {
        const s = config.fromUrl('postgres://', 't')
        assert.deepEqual(core(s), {
          host: 'envhost',
          port: 7777,
          user: 'envuser',
          password: 'envpw',
          database: 'envdb',
          sslmode: 'require',
          })
        assert.deepEqual(
          [s.from.host, s.from.port, s.from.user, s.from.password, s.from.database, s.from.sslmode],
          ['PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE', 'PGSSLMODE']
        )
        // what the url gives wins over the environment
        const t = config.fromUrl('postgres://u:pw@h:1/d?sslmode=disable', 't')
        assert.deepEqual(core(t), { host: 'h', port: 1, user: 'u', password: 'pw', database: 'd', sslmode: 'disable' })
      }
    )
  })

  it('without anything set: localhost, 5432, the OS user, a database named like the user, sslmode prefer, no password', async () => {
    await withEnv({}, () => {
      const s = config.fromUrl('postgres://', 't')
      assert.deepEqual(core(s), {
        host: 'localhost',
        port: 5432,
        user: osUser(),
        password: undefined,
        database: osUser(),
        sslmode: 'prefer',
      })
      assert.equal(config.fromUrl('postgres://bob@h', 't').database, 'bob')
    })
  })

  it('takes a Unix socket directory as the host (percent-encoded or as host=), and IPv6 addresses', async () => {
    await withEnv({}, async () => {
      const a = config.fromUrl('postgres://u@%2Ftmp%2Fpg:55432/db', 't')
      assert.equal(a.host, '/tmp/pg')
      assert.equal(a.port, 55432)
      const b = config.fromUrl('postgres://u@/db?host=/tmp/pg&port=55432', 't')
      assert.equal(b.host, '/tmp/pg')
      assert.equal(b.port, 55432)
      assert.deepEqual(await config.storeOptions(b, TABLES), {
        host: '/tmp/pg',
        port: 55432,
        user: 'u',
        database: 'db',
        sslMode: 'prefer',
        ...TABLES,
      })
      const c = config.fromUrl('postgres://u@[::1]:5433/db', 't')
      assert.equal(c.host, '::1')
      assert.equal((await config.storeOptions(c, TABLES)).host, '::1')
    })
  })

  it('reads sslrootcert, sslcert, sslkey, options, application_name and connect_timeout, and refuses other parameters', async () => {
    await withEnv({}, async () => {
      const s = config.fromUrl(
        'postgres://u@h/d?sslrootcert=/etc/ca.pem&sslcert=c.pem&sslkey=k.pem&options=-c%20search_path%3Dapp&application_name=mine&connect_timeout=0',
        't'
      )
      assert.deepEqual(s.sslRootCert, { file: '/etc/ca.pem' })
      assert.deepEqual([s.sslCert, s.sslKey], [{ file: 'c.pem' }, { file: 'k.pem' }])
      assert.equal(s.options, '-c search_path=app')
      assert.equal(s.applicationName, 'mine')
      assert.equal(s.connectTimeout, 0)
      await assertCode(() => config.fromUrl('postgres://u@h/d?schema=app', 't'), 'INVALID_ARGUMENT', /"schema"/)
      await assertCode(() => config.fromUrl('postgres://u@h/d?connect_timeout=soon', 't'), 'INVALID_ARGUMENT', /connect_timeout/)
    })
  })

  it('hands the PEM text of the files named to the store (only when TLS may be used); a file that cannot be read fails the connection', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evtstore-rs-pem-'))
    try {
      const ca = path.join(dir, 'ca.pem')
      const key = path.join(dir, 'key.pem')
      fs.writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n')
      fs.writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n')
      await withEnv({}, async () => {
        const enc = encodeURIComponent
        const s = config.fromUrl(`postgres://u@h/d?sslmode=verify-full&sslrootcert=${enc(ca)}&sslcert=${enc(ca)}&sslkey=${enc(key)}`, 't')
        const o = await config.storeOptions(s, TABLES)
        assert.equal(o.sslMode, 'verify-full')
        assert.equal(o.sslRootCert, fs.readFileSync(ca, 'utf8'))
        assert.equal(o.sslCert, fs.readFileSync(ca, 'utf8'))
        assert.equal(o.sslKey, fs.readFileSync(key, 'utf8'))
        const missing = path.join(dir, 'missing.pem')
        const off = config.fromUrl(`postgres://u@h/d?sslmode=disable&sslrootcert=${enc(missing)}`, 't')
        assert.equal((await config.storeOptions(off, TABLES)).sslRootCert, undefined)
        const on = config.fromUrl(`postgres://u@127.0.0.1:1/d?sslmode=require&sslrootcert=${enc(missing)}`, 't')
        const err = await assertCode(() => config.storeOptions(on, TABLES), 'CANNOT_CONNECT', /sslrootcert/)
        assert.ok(err.message.includes(missing), err.message)
        assert.equal(err.retryable, false)
        assert.equal(err.engine, 'postgres')
        // through a provider, the error says what the connection used
        const provider = providerModule('postgres').createProvider({ url: `postgres://u@127.0.0.1:1/d?sslmode=require&sslrootcert=${enc(missing)}` })
        const viaProvider = await assertCode(() => provider.ready, 'CANNOT_CONNECT', /sslrootcert[\s\S]*evtstore-rs used: server 127\.0\.0\.1:1/)
        assert.equal(viaProvider.connection.sslmode, 'require')
        await provider.close()
      })
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('refuses a malformed url, a bad port or sslmode with INVALID_ARGUMENT, and several hosts with NOT_SUPPORTED', async () => {
    for (const bad of [42, '', 'mysql://u@h/d', 'localhost:5432', 'postgres://u@h:99999/d', 'postgres://u@h:port/d', 'postgres://u@h/a/b', 'postgres://u@[::1/d']) {
      await assertCode(() => config.fromUrl(bad, 'postgres createProvider'), 'INVALID_ARGUMENT', /postgres createProvider/)
    }
    await assertCode(() => config.fromUrl('postgres://u@h/d?sslmode=always', 't'), 'INVALID_ARGUMENT', /sslmode/)
    await assertCode(() => config.fromUrl('postgres://u@h1:5432,h2:5432/d', 't'), 'NOT_SUPPORTED', /several hosts/)
    // the password never shows in the message
    const err = await assertCode(() => config.fromUrl('postgres://u:s3cret@h:99999/d', 't'), 'INVALID_ARGUMENT')
    assert.doesNotMatch(err.message, /s3cret/)
  })

  it('hands user, password and database to the store as they are, whatever characters they hold', async () => {
    await withEnv({}, async () => {
      const tricky = {
        host: '127.0.0.1',
        port: 55432,
        user: 'a@b:c/d e%',
        password: "p@ss:w/rd?#%&=+ ü'\"\\",
        database: 'my db/ü?#%',
        sslmode: 'require',
        options: '-c search_path=a\\ b',
      }
      const enc = encodeURIComponent
      const url =
        `postgres://${enc(tricky.user)}:${enc(tricky.password)}@127.0.0.1:55432/${enc(tricky.database)}` +
        `?sslmode=require&options=${enc(tricky.options)}`
      const settings = config.fromUrl(url, 't')
      assert.deepEqual(core(settings), tricky)
      assert.deepEqual(await config.storeOptions(settings, TABLES), {
        host: '127.0.0.1',
        port: 55432,
        user: tricky.user,
        password: tricky.password,
        database: tricky.database,
        sslMode: 'require',
        options: tricky.options,
        ...TABLES,
      })
      // and postgres.js and pg decode user and password the same way (each
      // decodes the database name in its own way: postgres.js not at all)
      const sql = makeSql(url)
      assert.deepEqual([sql.options.user, sql.options.pass], [tricky.user, tricky.password])
      const client = new (pg().Client)({ connectionString: url })
      assert.deepEqual([client.user, client.password], [tricky.user, tricky.password])
    })
  })

  it('describes the settings for error messages without the password', async () => {
    await withEnv({ PGUSER: 'envuser' }, () => {
      const s = config.fromUrl('postgres://:topsecret@127.0.0.1:55432/db', 't')
      const text = config.describeSettings(s)
      assert.match(text, /127\.0\.0\.1:55432/)
      assert.match(text, /user "envuser" \(from PGUSER\)/)
      assert.match(text, /password from the url/)
      assert.doesNotMatch(text, /topsecret/)
      assert.equal(config.redact('postgres://u:topsecret@h/d'), 'postgres://u:***@h/d')
      assert.equal(config.redact('postgres://u@h/d?password=topsecret&x=1'), 'postgres://u@h/d?password=***&x=1')
    })
  })
})

describe('PostgreSQL settings from a postgres.js instance', () => {
  it('reads host, port, user, pass, database from sql.options', async () => {
    await withEnv({}, async () => {
      const sql = makeSql({ host: '127.0.0.1', port: 55432, user: 'evt', pass: 'pw', database: 'app', max: 4 })
      const s = await config.fromPostgresJs(sql, 't')
      assert.deepEqual(core(s), {
        host: '127.0.0.1',
        port: 55432,
        user: 'evt',
        password: 'pw',
        database: 'app',
        sslmode: 'disable',
        connectTimeout: 30, // postgres.js's default connect_timeout
      })
      const t = await config.fromPostgresJs(makeSql({ host: 'h', user: 'u', connect_timeout: 2.5 }), 't')
      assert.equal(t.connectTimeout, 3)
      assert.equal(s.maxConnections, 4)
      assert.equal(s.from.password, 'sql.options.pass')
    })
  })

  it('reads a url given to postgres(), and what postgres.js filled from the environment and its defaults', async () => {
    await withEnv({ PGHOST: 'envhost', PGPORT: '6000', PGUSER: 'envuser', PGPASSWORD: 'envpw' }, async () => {
      const fromEnv = await config.fromPostgresJs(makeSql(), 't')
      assert.deepEqual(core(fromEnv), {
        host: 'envhost',
        port: 6000,
        user: 'envuser',
        password: 'envpw',
        database: 'envuser',
        sslmode: 'disable',
        connectTimeout: 30,
      })
      const fromUrl = await config.fromPostgresJs(makeSql('postgres://u%40x:p%23w@h:1234/d%20b?sslmode=require'), 't')
      assert.deepEqual(core(fromUrl), {
        host: 'h',
        port: 1234,
        user: 'u@x',
        password: 'p#w',
        database: 'd%20b', // postgres.js does not decode the database name: neither do we
        sslmode: 'require',
        connectTimeout: 30,
      })
    })
    await withEnv({}, async () => {
      const s = await config.fromPostgresJs(makeSql(), 't')
      assert.deepEqual([s.host, s.port, s.user, s.database, s.password], ['localhost', 5432, osUser(), osUser(), undefined])
    })
  })

  it('calls pass when it is a function, sync or async', async () => {
    const sync = await config.fromPostgresJs(makeSql({ host: 'h', user: 'u', pass: () => 'from-fn' }), 't')
    assert.equal(sync.password, 'from-fn')
    assert.equal(sync.from.password, 'sql.options.pass (a function)')
    const asyncPass = await config.fromPostgresJs(
      makeSql({ host: 'h', user: 'u', pass: async () => 'from-async' }),
      't'
    )
    assert.equal(asyncPass.password, 'from-async')
    await assertCode(
      () => config.fromPostgresJs(makeSql({ host: 'h', user: 'u', pass: async () => 42 }), 't'),
      'INVALID_ARGUMENT',
      /password/
    )
  })

  it('maps ssl: false, true, require, allow, prefer, verify-full and TLS options to an sslmode', async () => {
    const cases = [
      [false, 'disable'],
      [true, 'verify-full'],
      ['require', 'require'],
      ['allow', 'require'],
      ['prefer', 'prefer'],
      ['verify-full', 'verify-full'],
      [{ rejectUnauthorized: false }, 'require'],
      [{}, 'verify-full'],
      [{ ca: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----', checkServerIdentity: () => undefined }, 'verify-ca'],
    ]
    for (const [ssl, mode] of cases) {
      const s = await config.fromPostgresJs(makeSql({ host: 'h', user: 'u', ssl }), 't')
      assert.equal(s.sslmode, mode, `ssl ${JSON.stringify(ssl)}`)
    }
    const withCa = await config.fromPostgresJs(
      makeSql({ host: 'h', user: 'u', ssl: { ca: Buffer.from('-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----') } }),
      't'
    )
    // the PEM text goes to the store as text (the native store takes PEM, never a file name)
    assert.deepEqual(withCa.sslRootCert, { pem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----' })
    assert.equal(withCa.connectTimeout, 30)
    const handed = await config.storeOptions(withCa, TABLES)
    assert.equal(handed.sslRootCert, '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----')
    assert.equal(handed.connectTimeout, 30)
    assertNoPemFile()
    // sslmode in the url given to postgres()
    const viaUrl = await config.fromPostgresJs(makeSql('postgres://u@h/d?sslmode=verify-full'), 't')
    assert.equal(viaUrl.sslmode, 'verify-full')
  })

  it('reads a Unix socket path and the runtime parameters of `connection`', async () => {
    const s = await config.fromPostgresJs(
      makeSql({ path: '/tmp/evtstore-rs-pg/.s.PGSQL.55432', user: 'u', connection: { search_path: 'app, public', application_name: 'x' } }),
      't'
    )
    assert.equal(s.host, '/tmp/evtstore-rs-pg')
    assert.equal(s.port, 55432)
    assert.equal(s.options, '-c search_path=app,\\ public')
    assert.equal(s.connectTimeout, 30)
    assert.equal(s.applicationName, undefined)
    assert.deepEqual(await config.storeOptions(s, TABLES), {
      host: '/tmp/evtstore-rs-pg',
      port: 55432,
      user: 'u',
      database: 'u',
      sslMode: 'disable',
      options: '-c search_path=app,\\ public',
      connectTimeout: 30,
      ...TABLES,
      maxConnections: 10, // postgres.js's default max
    })
  })

  it('refuses several hosts with NOT_SUPPORTED and what is not a postgres.js instance with INVALID_ARGUMENT', async () => {
    await assertCode(() => config.fromPostgresJs(makeSql('postgres://u@h1:1,h2:2/d'), 't'), 'NOT_SUPPORTED', /several hosts/)
    for (const bad of [undefined, {}, () => {}, { options: { host: 'h' } }, 'postgres://u@h/d']) {
      await assertCode(() => config.fromPostgresJs(bad, 'postgres createProvider'), 'INVALID_ARGUMENT', /postgres\.js/)
    }
  })
})

describe('PostgreSQL settings from node-postgres', () => {
  /** What a pg Client made from `opts` connects with, as pg computes it. */
  function pgComputes(opts) {
    const client = new (pg().Client)(opts)
    return {
      host: client.host,
      port: client.port,
      user: client.user,
      password: client.password || undefined,
      database: client.database,
    }
  }

  const configs = [
    { host: '127.0.0.1', port: 55432, user: 'evt', password: 'pw', database: 'app' },
    { host: '127.0.0.1', port: '55432', user: 'evt' },
    {},
    { connectionString: 'postgres://cs%40user:cs%3Apw@cshost:6000/cs%20db' },
    { connectionString: 'postgresql://cshost/csdb', user: 'ignored-by-pg?', password: 'pw' },
    { connectionString: 'postgres://u@cshost/csdb', host: 'other', port: 1 },
    { connectionString: 'socket:/tmp/pg?db=sockdb' },
    { connectionString: '/tmp/pg sockdb' },
    { connectionString: 'postgres://u@%2Ftmp%2Fpg/db' },
    { connectionString: 'postgres://u@h/d?host=/tmp/pg&port=55432' },
  ]
  const envs = [{}, { PGHOST: 'envhost', PGPORT: '7000', PGUSER: 'envuser', PGPASSWORD: 'envpw', PGDATABASE: 'envdb' }]

  it('a Pool: the same host, port, user, password and database as pg itself computes, with and without PG* variables', async () => {
    for (const vars of envs) {
      await withEnv(vars, async () => {
        for (const opts of configs) {
          const pool = makePool(opts)
          const s = await config.fromPg(pool, 't')
          const expected = pgComputes(opts)
          assert.deepEqual(
            { host: s.host, port: s.port, user: s.user, password: s.password, database: s.database },
            expected,
            `${JSON.stringify(opts)} with ${JSON.stringify(vars)}`
          )
        }
      })
    }
  })

  it('a Client: read from the fields pg keeps on it', async () => {
    for (const vars of envs) {
      await withEnv(vars, async () => {
        for (const opts of configs) {
          const client = new (pg().Client)(opts)
          const s = await config.fromPg(client, 't')
          assert.deepEqual(
            { host: s.host, port: s.port, user: s.user, password: s.password, database: s.database },
            pgComputes(opts),
            `${JSON.stringify(opts)} with ${JSON.stringify(vars)}`
          )
        }
      })
    }
  })

  it('says where each setting came from', async () => {
    await withEnv({ PGPASSWORD: 'envpw' }, async () => {
      const s = await config.fromPg(makePool({ host: 'h', user: 'u', max: 3 }), 't')
      assert.equal(s.from.host, 'pool.options.host')
      assert.equal(s.from.password, 'PGPASSWORD')
      assert.equal(s.from.port, 'the default')
      assert.equal(s.maxConnections, 3)
      const c = await config.fromPg(makePool({ connectionString: 'postgres://u:pw@h/d' }), 't')
      assert.equal(c.from.user, 'pool.options.connectionString')
      assert.equal(c.from.password, 'pool.options.connectionString')
    })
  })

  it('calls password when it is a function, sync or async (Pool and Client)', async () => {
    const a = await config.fromPg(makePool({ host: 'h', user: 'u', password: () => 'sync-pw' }), 't')
    assert.equal(a.password, 'sync-pw')
    assert.match(a.from.password, /a function/)
    const b = await config.fromPg(makePool({ host: 'h', user: 'u', password: async () => 'async-pw' }), 't')
    assert.equal(b.password, 'async-pw')
    const c = await config.fromPg(new (pg().Client)({ host: 'h', user: 'u', password: async () => 'client-pw' }), 't')
    assert.equal(c.password, 'client-pw')
  })

  it('maps ssl options, sslmode in connectionString and PGSSLMODE to an sslmode, the way pg reads them', async () => {
    const ca = '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----'
    const cases = [
      [{}, 'disable'],
      [{ ssl: false }, 'disable'],
      [{ ssl: true }, 'verify-full'],
      [{ ssl: { rejectUnauthorized: false } }, 'require'],
      [{ ssl: { ca } }, 'verify-full'],
      [{ ssl: { ca, checkServerIdentity: () => undefined } }, 'verify-ca'],
      [{ connectionString: 'postgres://u@h/d?ssl=true' }, 'verify-full'],
      [{ connectionString: 'postgres://u@h/d?ssl=0' }, 'disable'],
      [{ connectionString: 'postgres://u@h/d?sslmode=disable' }, 'disable'],
      [{ connectionString: 'postgres://u@h/d?sslmode=no-verify' }, 'require'],
      // pg checks certificate and host for require (unlike libpq)...
      [{ connectionString: 'postgres://u@h/d?sslmode=require' }, 'verify-full'],
      [{ connectionString: 'postgres://u@h/d?sslmode=verify-full' }, 'verify-full'],
      // ...unless asked for libpq's meanings
      [{ connectionString: 'postgres://u@h/d?sslmode=require&uselibpqcompat=true' }, 'require'],
      [{ connectionString: 'postgres://u@h/d?sslmode=verify-ca&uselibpqcompat=true&sslrootcert=/ca.pem' }, 'verify-ca'],
    ]
    await withEnv({}, async () => {
      for (const [opts, mode] of cases) {
        const s = await config.fromPg(makePool({ user: 'u', ...opts }), 't')
        assert.equal(s.sslmode, mode, JSON.stringify(opts))
      }
      const withCa = await config.fromPg(
        makePool({ user: 'u', ssl: { ca: Buffer.from(ca), cert: ca, key: 'KEY', rejectUnauthorized: false } }),
        't'
      )
      assert.deepEqual([withCa.sslRootCert, withCa.sslCert, withCa.sslKey], [{ pem: ca }, { pem: ca }, { pem: 'KEY' }])
      const handed = await config.storeOptions(withCa, TABLES)
      assert.deepEqual([handed.sslRootCert, handed.sslCert, handed.sslKey], [ca, ca, 'KEY'])
      assertNoPemFile()
      const files = await config.fromPg(
        makePool({ connectionString: 'postgres://u@h/d?sslmode=verify-full&sslrootcert=/etc/ca.pem' }),
        't'
      )
      assert.deepEqual(files.sslRootCert, { file: '/etc/ca.pem' })
    })
    for (const [env, mode] of [['disable', 'disable'], ['require', 'verify-full'], ['no-verify', 'require']]) {
      await withEnv({ PGSSLMODE: env }, async () => {
        const s = await config.fromPg(makePool({ user: 'u' }), 't')
        assert.equal(s.sslmode, mode, `PGSSLMODE=${env}`)
        assert.equal(s.from.sslmode, 'PGSSLMODE')
        const c = await config.fromPg(new (pg().Client)({ user: 'u' }), 't')
        assert.equal(c.sslmode, mode, `Client with PGSSLMODE=${env}`)
      })
    }
  })

  it('passes pg options (runtime parameters) and connectionTimeoutMillis on', async () => {
    const s = await config.fromPg(makePool({ user: 'u', options: '-c search_path=app', connectionTimeoutMillis: 1500 }), 't')
    assert.equal(s.options, '-c search_path=app')
    assert.equal(s.connectTimeout, 2)
    const c = await config.fromPg(new (pg().Client)({ user: 'u', options: '-c search_path=app', application_name: 'mine' }), 't')
    assert.equal(c.options, '-c search_path=app')
    assert.equal(c.applicationName, 'mine')
  })

  it('refuses what is not a Pool or Client with INVALID_ARGUMENT, several hosts with NOT_SUPPORTED', async () => {
    for (const bad of [undefined, {}, 'postgres://u@h/d', { options: {} }, { query() {} }]) {
      await assertCode(() => config.fromPg(bad, 'pg createProvider'), 'INVALID_ARGUMENT', /Pool or Client/)
    }
    await assertCode(
      () => config.fromPg(makePool({ connectionString: 'postgres://u@h1:1,h2:2/d' }), 't'),
      'NOT_SUPPORTED',
      /several hosts/
    )
  })
})

describe('PostgreSQL provider options (no server needed)', () => {
  it('createProvider and migrate refuse missing, doubled or wrong connection options with INVALID_ARGUMENT', async () => {
    const postgres = providerModule('postgres')
    const pgProvider = providerModule('pg')
    const url = 'postgres://u@127.0.0.1:1/d'
    for (const bad of [undefined, null, 'postgres://u@h/d', {}, { events: 'events' }]) {
      await assertCode(() => postgres.createProvider(bad), 'INVALID_ARGUMENT')
      await assertCode(() => pgProvider.createProvider(bad), 'INVALID_ARGUMENT')
      await assertCode(() => postgres.migrate(bad), 'INVALID_ARGUMENT')
      await assertCode(() => pgProvider.migrate(bad), 'INVALID_ARGUMENT')
    }
    await assertCode(() => postgres.createProvider({ url, sql: makeSql() }), 'INVALID_ARGUMENT', /not both/)
    await assertCode(() => pgProvider.createProvider({ url, client: makePool({}) }), 'INVALID_ARGUMENT', /not both/)
    await assertCode(() => postgres.createProvider({ sql: makePool({}) }), 'INVALID_ARGUMENT', /postgres\.js/)
    await assertCode(() => pgProvider.createProvider({ client: makeSql() }), 'INVALID_ARGUMENT', /Pool or Client/)
    await assertCode(() => postgres.createProvider({ url: 'mysql://u@h/d' }), 'INVALID_ARGUMENT', /postgres:\/\//)
    for (const limit of [0, -1, 1.5, '10']) {
      await assertCode(() => postgres.createProvider({ url, limit }), 'INVALID_ARGUMENT', /limit/)
      await assertCode(() => pgProvider.createProvider({ url, limit }), 'INVALID_ARGUMENT', /limit/)
    }
    await assertCode(() => postgres.createProvider({ url, onError: 'x' }), 'INVALID_ARGUMENT', /onError/)
    await assertCode(() => pgProvider.createProvider({ url, maxConnections: 0 }), 'INVALID_ARGUMENT', /maxConnections/)
  })

  it('an unsafe table name is refused with INVALID_NAME before anything connects', async () => {
    const bad = 'events"; drop table x; --'
    const url = 'postgres://u@127.0.0.1:1/d'
    await assertCode(() => providerModule('postgres').createProvider({ url, events: bad }), 'INVALID_NAME')
    await assertCode(() => providerModule('pg').createProvider({ url, bookmarks: bad }), 'INVALID_NAME')
    await assertCode(() => providerModule('postgres').migrate({ url, events: bad }), 'INVALID_NAME')
    await assertCode(() => providerModule('pg').migrateClient({ url, events: 'schema.events' }), 'INVALID_NAME')
  })

  it('migrate with a driver object and no table named does nothing, as in evtstore', async () => {
    await providerModule('postgres').migrate({ sql: makeSql({ host: '127.0.0.1', port: 1, user: 'u' }) })
    await providerModule('pg').migrate({ client: makePool({ host: '127.0.0.1', port: 1, user: 'u' }) })
    await providerModule('pg').migratePool({ client: makePool({ host: '127.0.0.1', port: 1, user: 'u' }) })
    await providerModule('pg').migrateClient({ client: new (pg().Client)({ host: '127.0.0.1', port: 1, user: 'u' }) })
  })

  it('neither postgres.js nor pg is loaded by the package, even when a url provider is created', () => {
    const script = `
      const path = require('path')
      const root = ${JSON.stringify(ROOT)}
      require(root)
      const pgp = require(path.join(root, 'provider', 'pg'))
      const pjs = require(path.join(root, 'provider', 'postgres'))
      for (const make of [pgp.createProvider, pjs.createProvider]) {
        const p = make({ url: 'postgres://u@127.0.0.1:1/d' })
        p.ready.catch(() => {})
        p.close().catch(() => {})
      }
      const loaded = Object.keys(require.cache).filter((f) => /node_modules[\\\\/](pg|postgres|pg-[a-z-]+)[\\\\/]/.test(f))
      process.stdout.write(JSON.stringify(loaded))
    `
    const res = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 })
    assert.equal(res.status, 0, res.stderr)
    assert.deepEqual(JSON.parse(res.stdout), [])
  })
})
