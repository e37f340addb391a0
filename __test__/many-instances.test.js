'use strict'
// Handlers on many processes (docs/many-instances.md), on every store: three
// processes run one handler while this one appends, the active process is
// killed twice (see many-instances.js for what is checked); a handler with 4
// partitions over 3 processes, one killed; on PostgreSQL also through
// PgBouncer in transaction mode. A store whose server is missing is skipped
// with the reason (failed under CI=true).
const { describe, it } = require('node:test')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { provider: providerModule } = require('./pkg')
const { instancesTakeTurns, stopHandsOver } = require('./many-instances')
const { pgRequirement, createDatabase } = require('./pg-server')
const { mysqlRequirement, createMysqlDatabase } = require('./mysql-server')
const { mongoRequirement, createMongoDatabase } = require('./mongo-server')
const { neo4jRequirement, newLabels, driverFor, removeLabels } = require('./neo4j-server')

const T = { timeout: 120000 }

/** it() that runs `fn` with the store, or skips (fails under CI) without its server. */
function onStore(name, requirement, open) {
  const req = requirement()
  const opts = { ...T, ...(req.skip ? { skip: req.skip } : {}) }
  describe(`handlers on many processes: ${name}`, () => {
    for (const [title, run] of [
      ['one active at a time; the active one killed twice', (t, store) => instancesTakeTurns(t, { store, kills: 2 })],
      ['4 partitions over 3 processes, one killed', (t, store) => instancesTakeTurns(t, { store, partitions: 4, kills: 1 })],
      ['stop() hands the lease over at once', (t, store) => stopHandsOver(t, { store })],
    ]) {
      it(title, opts, async (t) => {
        if (req.fail) throw new Error(req.fail)
        const { store, drop } = await open(req)
        try {
          await run(t, store)
        } finally {
          await drop()
        }
      })
    }
  })
}

onStore('SQLite', () => ({}), async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evtstore-rs-many-'))
  const file = path.join(dir, 'events.sqlite')
  await providerModule('sqlite').migrate({ file })
  return { store: { form: 'sqlite-file', url: file }, drop: async () => fs.rmSync(dir, { recursive: true, force: true }) }
})

onStore('PostgreSQL', pgRequirement, async () => {
  const db = await createDatabase()
  await providerModule('postgres').migrate({ url: db.url })
  return { store: { form: 'postgres-url', url: db.url }, drop: () => db.drop() }
})

// PgBouncer in transaction mode (scripts/pgbouncer.sh): each transaction may
// run on another server connection; the leases hold there as well
function pgbouncerRequirement() {
  const url = process.env.EVTSTORE_TEST_PGBOUNCER_URL
  if (url) return { url }
  const missing = 'EVTSTORE_TEST_PGBOUNCER_URL is not set: start PgBouncer with `scripts/servers.sh start pgbouncer` and export the URL it prints'
  return process.env.CI === 'true' ? { fail: `${missing}. Under CI=true this test must run.` } : { skip: missing }
}

onStore('PostgreSQL through PgBouncer (transaction mode)', pgbouncerRequirement, async (req) => {
  const db = await createDatabase()
  const url = new URL(req.url)
  url.pathname = `/${db.name}`
  await providerModule('postgres').migrate({ url: url.toString() })
  return { store: { form: 'postgres-url', url: url.toString() }, drop: () => db.drop() }
})

onStore('MySQL/MariaDB', mysqlRequirement, async () => {
  const db = await createMysqlDatabase()
  await providerModule('mysql').migrate({ url: db.url })
  return { store: { form: 'mysql-url', url: db.url }, drop: () => db.drop() }
})

onStore('MongoDB (FerretDB)', mongoRequirement, async () => {
  const db = await createMongoDatabase()
  await providerModule('mongo').migrate({ url: db.url })
  return { store: { form: 'mongo-url', url: db.url }, drop: () => db.drop() }
})

onStore('Neo4j 5', () => neo4jRequirement('5'), async (req) => {
  const labels = newLabels()
  await providerModule('neo4j').migrate({ url: req.url, ...labels })
  return {
    store: { form: 'neo4j-url', url: req.url, ...labels },
    drop: async () => {
      const driver = driverFor(req.url)
      await removeLabels(driver, labels)
      await driver.close()
    },
  }
})
