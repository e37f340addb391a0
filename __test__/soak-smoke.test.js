'use strict'
// The load and soak script (`npm run soak`, soak/soak.js) run with tiny sizes,
// so that it keeps working: events through started handlers on memory and an
// SQLite file, concurrent command streams on both (and on PostgreSQL when
// EVTSTORE_TEST_PG_URL is set), each checked for lost and duplicate events.
// The figures it prints are not looked at: no timing is asserted here.
const { it } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { runNode } = require('./helpers')
const { ADMIN_URL, createDatabase } = require('./pg-server')

const script = path.join(__dirname, '..', 'soak', 'soak.js')

it('the soak script runs small and finds no lost and no duplicate event', { timeout: 120000 }, async (t) => {
  const stores = ['memory', 'sqlite']
  const args = ['--events', '2000', '--batch', '50', '--seconds', '2', '--cache-aggregates', '1000', '--no-out']
  if (ADMIN_URL) {
    const db = await createDatabase()
    t.after(() => db.drop())
    stores.push('postgres')
    args.push('--pg', db.url)
  } else {
    t.diagnostic('EVTSTORE_TEST_PG_URL is not set: memory and SQLite only')
  }
  args.push('--stores', stores.join(','), '--commands-on', stores.join(','))

  const res = await runNode(script, args, { timeoutMs: 90000, env: { EVTSTORE_SOAK_PG_URL: '' } })
  const out = `${res.stdout}\n${res.stderr}`
  assert.equal(res.code, 0, `soak exited with ${res.code}:\n${out}`)
  assert.doesNotMatch(out, /FAILED|ERROR/, out)
  for (const store of stores) {
    for (const handler of ['live handler', 'catch-up handler']) {
      assert.ok(
        out.includes(`ok - events on ${store}: ${handler}: no lost event: 2,000 of 2,000 delivered`),
        `no "${handler}: no lost event" line for ${store}:\n${out}`
      )
      assert.ok(
        out.includes(`ok - events on ${store}: ${handler}: no duplicate, in order:`),
        `no "${handler}: no duplicate" line for ${store}:\n${out}`
      )
    }
    for (const check of ['no lost event', 'no duplicate', 'counts match']) {
      assert.ok(out.includes(`ok - commands on ${store}: ${check}:`), `no "${check}" line for the commands on ${store}:\n${out}`)
    }
  }
  assert.match(out, /ok - cache on memory: every load gave the right aggregate/)
  assert.match(out, /soak: every check passed/)
  t.diagnostic(`the soak script took ${res.ms} ms`)
})
