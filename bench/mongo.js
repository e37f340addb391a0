'use strict'
// The MongoDB provider's own steps, ours only (evtstore's MongoDB provider
// needs server-filled BSON Timestamps, which the test server, FerretDB, does
// not fill in): one append's latency, a waiting handler's probe past the end,
// and `migrate` of evtstore-shaped documents. Commands, hydrating and
// catch-up are in `npm run bench` (--stores mongo, EVTSTORE_BENCH_MONGO_URL).
//
// Usage: EVTSTORE_TEST_MONGO_URL=mongodb://127.0.0.1:57017/ node bench/mongo.js [--events N]
// (N: the events migrated). Prints one line per figure; docs/providers/mongo.md quotes them.
const { createProvider, migrate } = require('../provider/mongo')

const URL_ = process.env.EVTSTORE_TEST_MONGO_URL
if (!URL_) {
  console.error('set EVTSTORE_TEST_MONGO_URL (scripts/ferretdb.sh start prints one)')
  process.exit(2)
}
const n = Number((process.argv.find((a) => a.startsWith('--events=')) || '--events=2000').split('=')[1])

function dbUrl(name) {
  const u = new URL(URL_)
  u.pathname = '/' + name
  return u.toString()
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

async function main() {
  const { MongoClient, Timestamp } = require('mongodb')
  const client = new MongoClient(URL_)
  const name = `evtstore_bench_${process.pid}`
  const url = dbUrl(name)
  try {
    await migrate({ url })
    const provider = createProvider({ url })
    await provider.ready
    // raw appends: one round trip per step measured apart
    const appendTimes = []
    for (let i = 0; i < 200; i++) {
      const events = provider.createEvents('users', `raw${i}`, 1, [{ type: 'loggedIn' }])
      const s = process.hrtime.bigint()
      await provider.append('users', `raw${i}`, 1, events)
      appendTimes.push(Number(process.hrtime.bigint() - s) / 1e6)
    }
    appendTimes.sort((a, b) => a - b)
    console.log(`provider.append of one event: p50 ${percentile(appendTimes, 0.5).toFixed(2)} ms, p99 ${percentile(appendTimes, 0.99).toFixed(2)} ms`)

    // the frontier read alone (what a waiting handler probes every 20 ms)
    const probes = []
    for (let i = 0; i < 200; i++) {
      const s = process.hrtime.bigint()
      await provider.getEventsFrom(['users'], 1e12)
      probes.push(Number(process.hrtime.bigint() - s) / 1e6)
    }
    probes.sort((a, b) => a - b)
    console.log(`a read past the end of 200 events (frontier walk + empty find): p50 ${percentile(probes, 0.5).toFixed(2)} ms, p99 ${percentile(probes, 0.99).toFixed(2)} ms`)
    await provider.close()

    // migrate of evtstore-shaped documents with Timestamp positions
    const other = client.db(`${name}_m`)
    const docs = Array.from({ length: n }, (_, i) => ({
      stream: 'users',
      aggregateId: `m${i}`,
      version: 1,
      position: new Timestamp({ t: 1700000000 + Math.floor(i / 10), i: (i % 10) + 1 }),
      timestamp: new Date(),
      event: { type: 'loggedIn' },
    }))
    await other.collection('events').insertMany(docs)
    const t0 = process.hrtime.bigint()
    await migrate(other.collection('events'), other.collection('bookmarks'))
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    console.log(`migrate of ${n} evtstore events with Timestamp positions: ${ms.toFixed(0)} ms = ${((n / ms) * 1000).toFixed(0)} events/s`)
    await other.dropDatabase()
  } finally {
    await client.db(name).dropDatabase().catch(() => {})
    await client.close()
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
