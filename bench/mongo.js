'use strict'
// The MongoDB provider's costs, ours only: evtstore's own MongoDB provider
// needs server-filled BSON Timestamps, which the test server (FerretDB) does
// not fill in (it fails at the second append to a stream), so there is no
// original to compare with here.
//
// Usage: EVTSTORE_TEST_MONGO_URL=mongodb://127.0.0.1:57017/ node bench/mongo.js [--events N]
// Prints one line per figure; docs/providers/mongo.md quotes them.
const { createAggregate, createDomainV2, createCommands } = require('..')
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
    const user = createAggregate({ stream: 'users', create: () => ({ n: 0 }), fold: (_ev, a) => ({ n: a.n + 1 }) })
    const { domain, createHandler } = createDomainV2({ provider }, { user })
    const cmd = createCommands(domain.user, { login: async () => ({ type: 'loggedIn' }) })

    // sequential commands, one event each, on distinct aggregates
    const times = []
    let t0 = process.hrtime.bigint()
    for (let i = 0; i < n; i++) {
      const s = process.hrtime.bigint()
      await cmd.login(`seq${i}`, {})
      times.push(Number(process.hrtime.bigint() - s) / 1e6)
    }
    let ms = Number(process.hrtime.bigint() - t0) / 1e6
    times.sort((a, b) => a - b)
    console.log(
      `sequential commands: ${n} in ${ms.toFixed(0)} ms = ${((n / ms) * 1000).toFixed(0)}/s; ` +
        `command latency p50 ${percentile(times, 0.5).toFixed(2)} ms, p99 ${percentile(times, 0.99).toFixed(2)} ms, ` +
        `p99.9 ${percentile(times, 0.999).toFixed(2)} ms, max ${times[times.length - 1].toFixed(2)} ms`
    )

    // concurrent commands on distinct aggregates
    const concurrent = Math.min(500, n)
    t0 = process.hrtime.bigint()
    await Promise.all(Array.from({ length: concurrent }, (_, i) => cmd.login(`conc${i}`, {})))
    ms = Number(process.hrtime.bigint() - t0) / 1e6
    console.log(`${concurrent} concurrent commands: ${ms.toFixed(0)} ms = ${((concurrent / ms) * 1000).toFixed(0)}/s`)

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

    // hydrate one aggregate of 1000 events
    const big = Array.from({ length: 1000 }, (_, i) => ({ type: 'loggedIn', i }))
    await provider.append('users', 'big', 1, provider.createEvents('users', 'big', 1, big))
    t0 = process.hrtime.bigint()
    const agg = await domain.user.getAggregate('big')
    ms = Number(process.hrtime.bigint() - t0) / 1e6
    console.log(`hydrate an aggregate of ${agg.version} events: ${ms.toFixed(1)} ms`)

    // catch-up: a handler reads everything from 0
    const total = (await provider.getEventsFrom(['users'], 0)).length
    const handler = createHandler('catchup', ['users'])
    let seen = 0
    handler.handle('users', 'loggedIn', () => {
      seen++
    })
    t0 = process.hrtime.bigint()
    while ((await handler.runOnce()) > 0) {}
    ms = Number(process.hrtime.bigint() - t0) / 1e6
    console.log(`handler catch-up: ${seen} of ${total} events in ${ms.toFixed(0)} ms = ${((seen / ms) * 1000).toFixed(0)}/s`)

    // the frontier read alone (what a waiting handler probes every 20 ms)
    const probes = []
    for (let i = 0; i < 200; i++) {
      const s = process.hrtime.bigint()
      await provider.getEventsFrom(['users'], 1e12)
      probes.push(Number(process.hrtime.bigint() - s) / 1e6)
    }
    probes.sort((a, b) => a - b)
    console.log(`a read past the end (frontier walk + empty find): p50 ${percentile(probes, 0.5).toFixed(2)} ms, p99 ${percentile(probes, 0.99).toFixed(2)} ms`)
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
    t0 = process.hrtime.bigint()
    await migrate(other.collection('events'), other.collection('bookmarks'))
    ms = Number(process.hrtime.bigint() - t0) / 1e6
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
