'use strict'
// Every provider the behaviour suite runs against. Each factory's create()
// gives a FRESH, migrated provider and a cleanup function:
//
//   const ctx = await factory.create({ limit, onError })
//   ctx.provider   the Provider
//   ctx.cleanup()  closes what create() opened and removes its files
//
// Flags tell the suite what a factory can do:
//   native       the storage is done by the Rust core (not a user's JS provider)
//   engine       what stores the events: 'memory', 'sqlite', 'postgres', 'mysql', 'mongo', 'neo4j' or 'js'
//   limitOption  createProvider takes `limit` (otherwise provider.limit is set)
//   variant(ctx, opts)  another createProvider call on the same backing with
//                       other options ({ limit, events, bookmarks }), used for
//                       bad-input checks; absent where there is none
//   migrateWith(ctx, opts)  the provider's migrate with other table names
//   file         the SQLite file behind the provider, when there is one
//   timestampResolution  ms the stored timestamps keep (1000: evtstore's
//                MySQL DATETIME keeps whole seconds); 1 when absent
//   ctx.serverRefuses(event)  true for an event the server itself refuses
//                (FerretDB v1: see ferretdbRefuses); absent where it takes any
//   skip / fail  the server it needs is not there: the reason to skip (or,
//                under CI, the message to fail with) instead of running
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { provider: providerModule } = require('./pkg')
const { createJsProvider } = require('./js-provider')
const { pgRequirement, createDatabase, adminParts } = require('./pg-server')
const { mysqlRequirement, createMysqlDatabase, serverParts } = require('./mysql-server')
const { mongoRequirement, createMongoDatabase } = require('./mongo-server')
const { neo4jRequirement, driverFor, newLabels, removeLabels } = require('./neo4j-server')

function tempDir(prefix = 'evtstore-rs-test-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

function removeDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
}

async function closeProvider(provider) {
  if (provider && typeof provider.close === 'function') await provider.close()
}

function knexInstance(client, filename) {
  const knex = require('knex')
  return knex({
    client,
    connection: { filename },
    useNullAsDefault: true,
    log: { warn() {}, deprecate() {}, debug() {}, error() {} },
  })
}

const sqliteFile = {
  name: 'sqlite file',
  native: true,
  engine: 'sqlite',
  limitOption: true,
  async create({ limit, onError } = {}) {
    const sqlite = providerModule('sqlite')
    const dir = tempDir()
    const file = path.join(dir, 'events.sqlite')
    await sqlite.migrate({ file })
    const provider = await sqlite.createProvider({ file, limit, onError })
    return {
      provider,
      file,
      async cleanup() {
        await closeProvider(provider)
        removeDir(dir)
      },
    }
  },
  async variant(ctx, opts) {
    return providerModule('sqlite').createProvider({ file: ctx.file, ...opts })
  },
  async migrateWith(ctx, opts) {
    return providerModule('sqlite').migrate({ file: ctx.file, ...opts })
  },
}

const sqliteMemory = {
  name: 'sqlite :memory:',
  native: true,
  engine: 'sqlite',
  limitOption: true,
  async create({ limit, onError } = {}) {
    const sqlite = providerModule('sqlite')
    const provider = await sqlite.createProvider({ file: ':memory:', limit, onError })
    return {
      provider,
      async cleanup() {
        await closeProvider(provider)
      },
    }
  },
  async variant(_ctx, opts) {
    return providerModule('sqlite').createProvider({ file: ':memory:', ...opts })
  },
  async migrateWith(_ctx, opts) {
    return providerModule('sqlite').migrate({ file: ':memory:', ...opts })
  },
}

function knexFactory({ name, client, memory, events = 'events', bookmarks = 'bookmarks' }) {
  return {
    name,
    native: true,
    engine: 'sqlite',
    limitOption: true,
    tables: { events, bookmarks },
    async create({ limit, onError } = {}) {
      const knexProvider = providerModule('knex')
      const dir = memory ? undefined : tempDir()
      const file = memory ? ':memory:' : path.join(dir, 'events.sqlite')
      const db = knexInstance(client, file)
      await knexProvider.migrate({ client: db, events, bookmarks })
      const provider = await knexProvider.createProvider({
        events: () => db(events),
        bookmarks: () => db(bookmarks),
        limit,
        onError,
      })
      return {
        provider,
        db,
        file: memory ? undefined : file,
        async cleanup() {
          await closeProvider(provider)
          await db.destroy()
          if (dir) removeDir(dir)
        },
      }
    },
    async variant(ctx, opts) {
      const { events: ev = events, bookmarks: bm = bookmarks, ...rest } = opts
      return providerModule('knex').createProvider({
        events: () => ctx.db(ev),
        bookmarks: () => ctx.db(bm),
        ...rest,
      })
    },
    async migrateWith(ctx, opts) {
      return providerModule('knex').migrate({ client: ctx.db, events, bookmarks, ...opts })
    },
  }
}

/**
 * The user's side of one PostgreSQL form on a database url: the options that
 * name the database ({ url }, { sql } or { client }) and how to end the driver.
 */
function pgDriver(form, db) {
  if (form === 'url') return { module: 'postgres', opts: { url: db.url }, async end() {} }
  if (form === 'postgres.js') {
    const postgres = require('postgres')
    const sql = postgres(db.url, { onnotice() {} })
    return { module: 'postgres', opts: { sql }, end: () => sql.end({ timeout: 1 }) }
  }
  if (form === 'pg Pool') {
    // the fields, not a connectionString: the reading of each is checked
    const { Pool } = require('pg')
    const { host, port, user, password } = adminParts()
    const pool = new Pool({ host, port, user, password, database: db.name })
    return { module: 'pg', opts: { client: pool }, end: () => pool.end() }
  }
  throw new Error(`unknown PostgreSQL form ${form}`)
}

/** A PostgreSQL provider in one of its forms, each instance on a database of its own. */
function pgFactory({ name, form, events = 'events', bookmarks = 'bookmarks' }) {
  const req = pgRequirement()
  return {
    name,
    native: true,
    engine: 'postgres',
    limitOption: true,
    tables: { events, bookmarks },
    skip: req.skip,
    fail: req.fail,
    async create({ limit, onError } = {}) {
      const db = await createDatabase()
      const driver = pgDriver(form, db)
      const mod = providerModule(driver.module)
      let provider
      try {
        await mod.migrate({ ...driver.opts, events, bookmarks })
        provider = mod.createProvider({ ...driver.opts, events, bookmarks, limit, onError })
        await provider.ready
      } catch (err) {
        await closeProvider(provider)
        await driver.end()
        await db.drop()
        throw err
      }
      return {
        provider,
        db,
        driver,
        async cleanup() {
          await closeProvider(provider)
          await driver.end()
          await db.drop()
        },
      }
    },
    async variant(ctx, opts) {
      return providerModule(ctx.driver.module).createProvider({ ...ctx.driver.opts, events, bookmarks, ...opts })
    },
    async migrateWith(ctx, opts) {
      return providerModule(ctx.driver.module).migrate({ ...ctx.driver.opts, events, bookmarks, ...opts })
    },
  }
}

/** A knex instance on a server database: the connection in the form knex users give it. */
function serverKnex(client, db, form) {
  const knex = require('knex')
  let connection
  if (form === 'string') connection = db.url
  else if (client === 'pg') {
    const { host, port, user, password } = adminParts()
    connection = { host, port, user, password, database: db.name }
  } else {
    const { host, port, user, password } = serverParts()
    connection = { host, port, user, password, database: db.name }
  }
  if (form === 'function') {
    const fixed = connection
    connection = () => fixed
  }
  return knex({ client, connection, pool: { min: 0, max: 4 } })
}

/**
 * MySQL through provider/mysql (url) or evtstore's provider/knex with a
 * server client (mysql, mysql2, pg), each instance on a database of its own.
 */
function serverFactory({ name, engine, client, form = 'object', events = 'events', bookmarks = 'bookmarks' }) {
  const req = engine === 'mysql' ? mysqlRequirement() : pgRequirement()
  const newDatabase = engine === 'mysql' ? createMysqlDatabase : createDatabase
  /** The module and the options that name the database, per instance. */
  const forms = (/** @type {any} */ ctx) =>
    client
      ? { module: 'knex', opts: { events: () => ctx.db(events), bookmarks: () => ctx.db(bookmarks) }, migrate: { client: ctx.db, events, bookmarks } }
      : { module: 'mysql', opts: { url: ctx.database.url, events, bookmarks }, migrate: { url: ctx.database.url, events, bookmarks } }
  return {
    name,
    native: true,
    engine,
    limitOption: true,
    tables: { events, bookmarks },
    timestampResolution: engine === 'mysql' ? 1000 : 1,
    skip: req.skip,
    fail: req.fail,
    async create({ limit, onError } = {}) {
      const database = await newDatabase()
      const db = client ? serverKnex(client, database, form) : undefined
      const ctx = { database, db }
      const f = forms(ctx)
      let provider
      try {
        await providerModule(f.module).migrate(f.migrate)
        provider = providerModule(f.module).createProvider({ ...f.opts, limit, onError })
        await provider.ready
      } catch (err) {
        await closeProvider(provider)
        if (db) await db.destroy()
        await database.drop()
        throw err
      }
      return {
        ...ctx,
        provider,
        async cleanup() {
          await closeProvider(provider)
          if (db) await db.destroy()
          await database.drop()
        },
      }
    },
    async variant(ctx, opts) {
      const f = forms(ctx)
      if (!client) return providerModule('mysql').createProvider({ ...f.opts, ...opts })
      const { events: ev = events, bookmarks: bm = bookmarks, ...rest } = opts
      return providerModule('knex').createProvider({ events: () => ctx.db(ev), bookmarks: () => ctx.db(bm), ...rest })
    },
    async migrateWith(ctx, opts) {
      return providerModule(forms(ctx).module).migrate({ ...forms(ctx).migrate, ...opts })
    },
  }
}


/**
 * What FerretDB v1 refuses and MongoDB stores: an array directly inside an
 * array, a field name with a '.' or starting with '$' (mongo.test.js checks
 * that such an append is refused whole, as a DATABASE_ERROR).
 * @param {any} value
 * @param {boolean} inArray
 * @returns {boolean}
 */
function ferretdbRefuses(value, inArray = false) {
  if (Array.isArray(value)) return inArray || value.some((v) => ferretdbRefuses(v, true))
  if (!value || typeof value !== 'object') return false
  return Object.entries(value).some(([k, v]) => k.includes('.') || k.startsWith('$') || ferretdbRefuses(v, false))
}

/**
 * A MongoDB provider, each instance on a database of its own: natively on a
 * url, or as evtstore takes it, on Collections of the official driver
 * (Promises of them, as evtstore allows), which names its own collections
 * (no table-name variant).
 */
function mongoFactory({ name, form }) {
  const req = mongoRequirement()
  const collections = form === 'collections'
  return {
    name,
    native: true,
    engine: 'mongo',
    limitOption: true,
    skip: req.skip,
    fail: req.fail,
    async create({ limit, onError } = {}) {
      const mongo = providerModule('mongo')
      const db = await createMongoDatabase()
      const where = collections
        ? { events: Promise.resolve(db.db.collection('events')), bookmarks: db.db.collection('bookmarks') }
        : { url: db.url }
      let provider
      try {
        if (collections) await mongo.migrate(where.events, where.bookmarks)
        else await mongo.migrate(where)
        provider = mongo.createProvider({ ...where, limit, onError })
        await provider.ready
      } catch (err) {
        await closeProvider(provider)
        await db.drop()
        throw err
      }
      const info = await db.db.admin().command({ buildInfo: 1 })
      return {
        provider,
        mongo: db,
        serverRefuses: info.ferretdbVersion ? ferretdbRefuses : undefined,
        async cleanup() {
          await closeProvider(provider)
          await db.drop()
        },
      }
    },
    ...(collections
      ? {}
      : {
          async variant(ctx, opts) {
            return providerModule('mongo').createProvider({ url: ctx.mongo.url, ...opts })
          },
          async migrateWith(ctx, opts) {
            return providerModule('mongo').migrate({ url: ctx.mongo.url, ...opts })
          },
        }),
  }
}

/**
 * A Neo4j provider on the server of `version`, through `entry` (neo4j or
 * neo4j-v3), native-first ({ url }) or through a neo4j-driver Driver; each
 * instance on labels of its own.
 */
function neo4jFactory({ version, entry, form }) {
  const req = neo4jRequirement(version)
  return {
    name: `${entry} ${version} ${form}`,
    native: true,
    engine: 'neo4j',
    limitOption: true,
    skip: req.skip,
    fail: req.fail,
    async create({ limit, onError } = {}) {
      const labels = newLabels()
      const admin = driverFor(req.url)
      const driver = form === 'driver' ? driverFor(req.url) : undefined
      const location = driver ? { client: driver } : { url: req.url }
      const mod = providerModule(entry)
      let provider
      const end = async () => {
        await closeProvider(provider)
        if (driver) await driver.close()
        await removeLabels(admin, labels)
        await admin.close()
      }
      try {
        await mod.migrate({ ...location, ...labels })
        provider = mod.createProvider({ ...location, ...labels, limit, onError })
        await provider.ready
      } catch (err) {
        await end()
        throw err
      }
      return { provider, location, labels, admin, cleanup: end }
    },
    async variant(ctx, opts) {
      return providerModule(entry).createProvider({ ...ctx.location, ...ctx.labels, ...opts })
    },
    async migrateWith(ctx, opts) {
      return providerModule(entry).migrate({ ...ctx.location, ...ctx.labels, ...opts })
    },
  }
}

const memory = {
  name: 'memory',
  native: true,
  engine: 'memory',
  limitOption: false,
  async create({ limit, onError } = {}) {
    const provider = providerModule('memory').createProvider(undefined, onError)
    if (limit !== undefined) provider.limit = limit
    return { provider, async cleanup() {} }
  },
}

const jsReference = {
  name: 'plain JavaScript provider',
  native: false,
  engine: 'js',
  limitOption: true,
  async create({ limit, onError } = {}) {
    return { provider: createJsProvider({ limit, onError }), async cleanup() {} }
  },
}

const factories = [
  memory,
  sqliteFile,
  sqliteMemory,
  knexFactory({ name: 'knex sqlite3 file', client: 'sqlite3', memory: false }),
  knexFactory({ name: 'knex sqlite3 :memory:', client: 'sqlite3', memory: true }),
  // non-default table names: the provider must take them from the query builders
  knexFactory({
    name: 'knex better-sqlite3 file',
    client: 'better-sqlite3',
    memory: false,
    events: 'app_events',
    bookmarks: 'app_bookmarks',
  }),
  jsReference,
  pgFactory({ name: 'postgres url', form: 'url' }),
  // non-default table names: read from the options next to the driver object
  pgFactory({ name: 'postgres.js sql', form: 'postgres.js', events: 'pjs_events', bookmarks: 'pjs_bookmarks' }),
  pgFactory({ name: 'pg Pool', form: 'pg Pool' }),
  serverFactory({ name: 'knex pg', engine: 'postgres', client: 'pg', events: 'kpg_events', bookmarks: 'kpg_bookmarks' }),
  serverFactory({ name: 'mysql url', engine: 'mysql' }),
  serverFactory({ name: 'knex mysql2', engine: 'mysql', client: 'mysql2', events: 'app_events', bookmarks: 'app_bookmarks' }),
  serverFactory({ name: 'knex mysql', engine: 'mysql', client: 'mysql', form: 'function' }),
  mongoFactory({ name: 'mongo url', form: 'url' }),
  mongoFactory({ name: 'mongo driver Collections', form: 'collections' }),
  neo4jFactory({ version: '4.4', entry: 'neo4j', form: 'url' }),
  neo4jFactory({ version: '4.4', entry: 'neo4j', form: 'driver' }),
  neo4jFactory({ version: '3.5', entry: 'neo4j-v3', form: 'url' }),
  neo4jFactory({ version: '3.5', entry: 'neo4j-v3', form: 'driver' }),
  neo4jFactory({ version: '5', entry: 'neo4j', form: 'url' }),
  neo4jFactory({ version: '5', entry: 'neo4j', form: 'driver' }),
]

// EVTSTORE_TEST_PROVIDERS="memory,sqlite file" runs the suite against some
// providers only (a development aid; by default every provider runs).
const only = process.env.EVTSTORE_TEST_PROVIDERS
const selected = only
  ? factories.filter((f) => only.split(',').map((s) => s.trim()).includes(f.name))
  : factories

module.exports = { factories: selected, allFactories: factories, tempDir, removeDir, closeProvider, knexInstance }
