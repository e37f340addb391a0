'use strict'
// Why MemoryStore stays synchronous (docs/ARCHITECTURE.md): the cost of one
// async napi call (a hop to a tokio thread and back) against a synchronous
// call into the core. Run: node bench/async-hop.js (after npm run build).
const { MemoryStore } = require('../native/evtstore-rs.node')
async function main() {
  const m = new MemoryStore()
  m.appendVersions('s', 'a', 1, 1)
  const w = m.createWaiter()
  const N = 20000
  for (let round = 0; round < 3; round++) {
    let t = process.hrtime.bigint()
    for (let i = 0; i < N; i++) await w.wait(0, Infinity)
    const hop = Number(process.hrtime.bigint() - t) / N / 1000
    t = process.hrtime.bigint()
    for (let i = 0; i < N; i++) m.positionsFor('s', 'a')
    const sync = Number(process.hrtime.bigint() - t) / N / 1000
    t = process.hrtime.bigint()
    for (let i = 0; i < N; i++) await Promise.resolve(m.positionsFor('s', 'a'))
    const micro = Number(process.hrtime.bigint() - t) / N / 1000
    console.log(`async napi call (tokio hop) ${hop.toFixed(1)} us; sync call ${sync.toFixed(2)} us; sync call + awaited Promise ${micro.toFixed(2)} us`)
  }
}
main()
