'use strict'
// Handler leases within one process (the many-instances tests run them across
// processes): the options are checked, a handler tells its state, two
// handlers on one stored bookmark take turns, the partition of an aggregate is
// stable, and what status() and the status command show.

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { root, provider: providerModule } = require('./pkg')
const { partitionOf } = require('../lib/lease')
const { delay, withTimeout } = require('./helpers')

async function sqliteProvider(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evtstore-rs-leases-'))
  const file = path.join(dir, 'events.sqlite')
  await providerModule('sqlite').migrate({ file })
  const provider = providerModule('sqlite').createProvider({ file })
  t.after(async () => {
    await provider.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  return { provider, file }
}

const until = async (what, check) =>
  withTimeout(
    (async () => {
      while (!(await check())) await delay(20)
    })(),
    10000,
    what
  )

describe('handler leases in one process', () => {
  it('refuses bad scale-out options with INVALID_ARGUMENT, saying what to pass', async (t) => {
    const { createHandler, MemoryBookmark } = root()
    const { provider } = await sqliteProvider(t)
    const base = { bookmark: 'b', streams: ['s'], provider }
    const cases = [
      [{ leaseMs: 100 }, /leaseMs must be at least 300 ms/],
      [{ leaseMs: -1 }, /leaseMs/],
      [{ coordinate: 'yes' }, /coordinate must be true .* or false/],
      [{ partitions: 0 }, /partitions/],
      [{ partitions: 2.5 }, /partitions/],
      [{ partitions: 2, coordinate: false }, /do not go together/],
      [{ partitions: 2, bookmark: MemoryBookmark }, /needs a stored bookmark/],
      [{ onStateChange: 'log' }, /onStateChange must be a function/],
    ]
    for (const [extra, message] of cases) {
      assert.throws(() => createHandler({ ...base, ...extra }), (err) => err.code === 'INVALID_ARGUMENT' && message.test(err.message), JSON.stringify(extra))
    }
    assert.deepEqual(await provider.status(), [], 'nothing stored by a refused handler')
  })

  it('two handlers on one stored bookmark take turns; stop() hands over; state and status() say who is active', async (t) => {
    const { createHandler } = root()
    const { provider } = await sqliteProvider(t)
    const states = []
    const make = (tag) => {
      const h = createHandler({ bookmark: 'orders', streams: ['orders'], provider, pollInterval: 50, onStateChange: (s) => states.push([tag, s]) })
      t.after(() => h.stop())
      const seen = []
      h.handle('orders', 'placed', (id, ev) => {
        seen.push(ev.n)
      })
      return { h, seen }
    }
    const a = make('a')
    const b = make('b')
    assert.equal(a.h.state, 'stopped')
    a.h.start()
    await until('a active', () => a.h.state === 'active')
    b.h.start()
    await until('b standby', () => b.h.state === 'standby')
    for (let n = 1; n <= 5; n++) await provider.append('orders', 'o1', n, [{ type: 'placed', n }])
    await until('a handled 5', () => a.seen.length === 5)
    assert.deepEqual(b.seen, [])
    const sa = await a.h.status()
    const sb = await b.h.status()
    assert.equal(sa.state, 'active')
    assert.equal(sb.state, 'standby')
    assert.equal(sa.coordinated, true)
    assert.notEqual(sa.owner, sb.owner)
    assert.equal(sa.position, 5)
    assert.equal(sa.lag, 0)
    const [row] = await provider.status()
    assert.equal(row.name, 'orders')
    assert.equal(row.owner, sa.owner)
    assert.deepEqual(row.streams, ['orders'])
    assert.ok(row.expiresAt instanceof Date && row.expiresAt > row.renewedAt)

    await a.h.stop()
    assert.equal(a.h.state, 'stopped')
    await until('b active', () => b.h.state === 'active')
    for (let n = 6; n <= 8; n++) await provider.append('orders', 'o1', n, [{ type: 'placed', n }])
    await until('b handled 3', () => b.seen.length === 3)
    assert.deepEqual(b.seen, [6, 7, 8], 'b went on from the bookmark a left')
    assert.deepEqual(a.seen, [1, 2, 3, 4, 5])
    await b.h.stop()
    // a handler stands by until its first claim is through
    assert.deepEqual(states, [
      ['a', 'standby'],
      ['a', 'active'],
      ['b', 'standby'],
      ['a', 'stopped'],
      ['b', 'active'],
      ['b', 'stopped'],
    ])
    const [after] = await provider.status()
    assert.equal(after.owner, undefined, 'released')
    assert.equal(after.position, 8)
  })

  it('coordinate: false and MemoryBookmark handlers are not coordinated: both handle every event', async (t) => {
    const { createHandler, MemoryBookmark } = root()
    const { provider } = await sqliteProvider(t)
    const seen = []
    const hs = [
      createHandler({ bookmark: 'each', streams: ['s'], provider, pollInterval: 50, coordinate: false }),
      createHandler({ bookmark: 'each', streams: ['s'], provider, pollInterval: 50, coordinate: false }),
      createHandler({ bookmark: MemoryBookmark, streams: ['s'], provider, pollInterval: 50 }),
    ]
    hs.forEach((h, i) => h.handle('s', 'e', () => seen.push(i)))
    t.after(() => Promise.all(hs.map((h) => h.stop())))
    hs.forEach((h) => h.start())
    await provider.append('s', 'x', 1, [{ type: 'e' }])
    await until('all three handled it', () => seen.length === 3)
    assert.deepEqual(seen.sort(), [0, 1, 2])
    for (const h of hs) assert.equal((await h.status()).coordinated, false)
    await Promise.all(hs.map((h) => h.stop()))
    assert.deepEqual(await provider.status(), [{ name: 'each', position: 1, lag: undefined, streams: undefined, owner: undefined, token: undefined, renewedAt: undefined, expiresAt: undefined }])
  })

  it('the partition of an aggregate id is FNV-1a of its UTF-8 bytes modulo the count, the same everywhere', () => {
    assert.deepEqual(
      ['a', 'order-1', 'Ünïcode', '', 'x'.repeat(300)].map((id) => [partitionOf(id, 4), partitionOf(id, 7)]),
      [[0, 5], [1, 1], [3, 3], [1, 2], [1, 6]]
    )
    const counts = [0, 0, 0, 0]
    for (let i = 0; i < 4000; i++) counts[partitionOf(`user-${i}`, 4)]++
    for (const c of counts) assert.ok(c > 850 && c < 1150, `spread: ${counts}`)
  })

  it('npx evtstore-rs status <file> prints the bookmarks as a table (and --json)', async (t) => {
    const { createHandler } = root()
    const { provider, file } = await sqliteProvider(t)
    const h = createHandler({ bookmark: 'mails', streams: ['users'], provider, pollInterval: 50 })
    h.handle('users', 'created', () => {})
    t.after(() => h.stop())
    await provider.append('users', 'u1', 1, [{ type: 'created' }])
    h.start()
    await until('handled', async () => (await provider.getPosition('mails')) === 1)
    const cli = path.join(__dirname, '..', 'scripts', 'cli.js')
    const table = spawnSync(process.execPath, [cli, 'status', file], { encoding: 'utf8' })
    assert.equal(table.status, 0, table.stderr)
    const lines = table.stdout.trim().split('\n')
    assert.match(lines[0], /^bookmark\s+position\s+lag\s+owner\s+token\s+lease$/)
    assert.match(lines[1], /^mails\s+1\s+0\s+\S+:\d+:[0-9a-f]+\s+1\s+expires in \d+\.\d s$/)
    const json = JSON.parse(spawnSync(process.execPath, [cli, 'status', file, '--json'], { encoding: 'utf8' }).stdout)
    assert.equal(json[0].name, 'mails')
    await h.stop()
    const usage = spawnSync(process.execPath, [cli, 'nothing'], { encoding: 'utf8' })
    assert.equal(usage.status, 2)
    assert.match(usage.stderr, /usage: npx evtstore-rs status <url>/)
  })
})
