'use strict'
// The functions evtstore publishes outside its root (src/common,
// src/event-handler, provider/util) behave as an application that imports
// them expects. Loaded by the paths the package maps them to.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')

const ROOT = path.resolve(__dirname, '..')
const { EventHandler } = require(path.join(ROOT, 'compat/src/event-handler'))
const common = require(path.join(ROOT, 'compat/src/common'))
const util = require(path.join(ROOT, 'provider/util'))
const { createProvider } = require(path.join(ROOT, 'provider/memory'))
const { MemoryBookmark } = require(ROOT)

async function seeded() {
  const provider = createProvider()
  await provider.append('users', 'u1', 1, provider.createEvents('users', 'u1', 1, [{ type: 'created' }, { type: 'renamed' }]))
  await provider.append('posts', 'p1', 1, provider.createEvents('posts', 'p1', 1, [{ type: 'created' }]))
  await provider.append('other', 'o1', 1, provider.createEvents('other', 'o1', 1, [{ type: 'created' }]))
  return provider
}

test('src/event-handler: EventHandler handles the events of its streams by type, runOnce counts what it read', async () => {
  const provider = await seeded()
  const handler = new EventHandler({ stream: ['users', 'posts'], bookmark: MemoryBookmark, provider })
  assert.equal(handler.name, MemoryBookmark)
  const seen = []
  // detached, as evtstore's arrow properties allow
  const { handle, handlers, runOnce } = handler
  handle('created', async (id, ev, meta) => {
    seen.push([meta.stream, id, ev.type])
    assert.ok(meta.timestamp instanceof Date)
  })
  handlers({ renamed: async (id) => seen.push(['renamed', id]) })
  assert.equal(await runOnce(), 3)
  assert.deepEqual(seen, [
    ['users', 'u1', 'created'],
    ['renamed', 'u1'],
    ['posts', 'p1', 'created'],
  ])
  assert.equal(await runOnce(), 0)
  // a single stream as a string
  const one = new EventHandler({ stream: 'other', bookmark: MemoryBookmark, provider })
  let n = 0
  one.handle('created', async () => void n++)
  // as evtstore's, runOnce(n) adds n to the number of events read
  assert.equal(await one.runOnce(1), 2)
  assert.equal(n, 1)
  one.start()
  await one.stop()
})

test('src/event-handler: a stored bookmark is written, and a new EventHandler on it continues after it', async () => {
  const provider = await seeded()
  const first = new EventHandler({ stream: 'users', bookmark: 'bm', provider })
  assert.equal(await first.runOnce(), 2)
  const pos = await provider.getPosition('bm')
  assert.ok(pos > 0)
  const second = new EventHandler({ stream: 'users', bookmark: 'bm', provider })
  assert.equal(await second.getPosition(), pos)
  assert.equal(await second.runOnce(), 0)
})

test('src/common: getAllEventsFor resolves to every event of one aggregate (a Promise even on memory), toMeta gives a Date', async () => {
  const provider = await seeded()
  const read = common.getAllEventsFor(provider, 'users', 'u1')
  assert.ok(read instanceof Promise)
  const events = await read
  assert.deepEqual(events.map((e) => e.event.type), ['created', 'renamed'])
  const after = await common.getAllEventsFor(provider, 'users', 'u1', events[0].position)
  assert.deepEqual(after.map((e) => e.version), [2])
  const meta = common.toMeta({ ...events[0], timestamp: events[0].timestamp.toISOString() })
  assert.deepEqual(Object.keys(meta).sort(), ['aggregateId', 'position', 'stream', 'timestamp', 'version'])
  assert.ok(meta.timestamp instanceof Date)
  assert.equal(common.MemoryBookmark, '@@MemoryBookmark')
})

test('provider/util: toArray, isPositionZero and createEventsMapper', () => {
  assert.deepEqual(util.toArray('a'), ['a'])
  const list = ['a', 'b']
  assert.equal(util.toArray(list), list)
  assert.equal(util.isPositionZero(0), true)
  assert.equal(util.isPositionZero(3), false)
  assert.equal(util.isPositionZero({ high: 1, low: 0 }), true)
  const before = Date.now()
  const mapped = util.createEventsMapper(7)('users', 'u1', 3, [{ type: 'a' }, { type: 'b' }])
  assert.deepEqual(
    mapped.map(({ timestamp, ...rest }) => rest),
    [
      { stream: 'users', position: 7, version: 3, event: { type: 'a' }, aggregateId: 'u1' },
      { stream: 'users', position: 7, version: 4, event: { type: 'b' }, aggregateId: 'u1' },
    ]
  )
  for (const ev of mapped) assert.ok(ev.timestamp instanceof Date && ev.timestamp.getTime() >= before)
})
