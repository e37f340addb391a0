'use strict'
// A quick comparison on one Neo4j server (not part of `npm run bench`):
// evtstore@12.0.1's provider/neo4j (through neo4j-driver) against ours
// (through a url and through the same Driver), each on labels of its own.
// Sequential appends (one event per append), 20 appends in flight, a
// catch-up read of every event, and a read of one aggregate's events.
//
// usage: node bench/neo4j-quick.js bolt://127.0.0.1:57688 [events]
const neo4j = require('neo4j-driver')

const url = process.argv[2] || 'bolt://127.0.0.1:57688'
const N = Number(process.argv[3] || 1000)

async function time(fn) {
  const t = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - t) / 1e6
}

async function measure(name, mod, opts) {
  const events = `bench_${name.replace(/\W/g, '')}_${Date.now()}`
  const labels = { events, bookmarks: `${events}_bm` }
  await mod.migrate({ ...opts, ...labels })
  const p = mod.createProvider({ ...opts, ...labels })
  const ev = (id, v) => (p.createEvents ? p.createEvents('s', id, v, [{ type: 'x', n: v }]) : [{ type: 'x', n: v }])
  const seq = await time(async () => {
    for (let v = 1; v <= N; v++) await p.append('s', 'agg', v, ev('agg', v))
  })
  const conc = await time(async () => {
    let next = 0
    const worker = async () => {
      while (next < N) {
        const i = next++
        await p.append('s', `c${i}`, 1, ev(`c${i}`, 1))
      }
    }
    await Promise.all(Array.from({ length: 20 }, worker))
  })
  let count = 0
  const catchUp = await time(async () => {
    count = (await p.getEventsFrom('s', 0)).length
  })
  let agg = 0
  const hydrate = await time(async () => {
    agg = (await p.getEventsFor('s', 'agg')).length
  })
  if (count !== 2 * N || agg !== N) throw new Error(`${name}: read ${count} and ${agg} events`)
  if (p.close) await p.close()
  return { name, seq, conc, catchUp, hydrate }
}

async function main() {
  const driver = neo4j.driver(url, neo4j.auth.basic('neo4j', 'password'))
  const rows = []
  rows.push(await measure('evtstore 12.0.1 provider/neo4j (neo4j-driver)', require('evtstore/provider/neo4j'), { client: driver }))
  rows.push(await measure('evtstore-rs provider/neo4j { url }', require('../provider/neo4j'), { url }))
  rows.push(await measure('evtstore-rs provider/neo4j { client }', require('../provider/neo4j'), { client: driver }))
  await driver.close()
  const f = (ms) => ms.toFixed(0).padStart(7)
  console.log(`server ${url}, ${N} events per step (ms; lower is better)`)
  console.log('store'.padEnd(48), '  seq app', '  20 conc', ' catch-up', '  hydrate')
  for (const r of rows) console.log(r.name.padEnd(48), f(r.seq), '  ', f(r.conc), '  ', f(r.catchUp), '  ', f(r.hydrate))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
