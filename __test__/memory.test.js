'use strict'
// What only the in-memory provider does: initial events, the JSON copy an
// append keeps, and the stored objects its reads hand out.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { root, provider: providerModule } = require('./pkg')

const { createProvider } = providerModule('memory')

describe('memory provider', () => {
  it('initial events are stored in order with their versions, positions from 1 and Date timestamps', async () => {
    const at = new Date('2026-01-02T03:04:05.000Z')
    const provider = createProvider([
      { stream: 'users', aggregateId: 'u1', version: 1, position: 0, timestamp: at, event: { type: 'created', name: 'ann' } },
      { stream: 'users', aggregateId: 'u1', version: 2, position: 0, timestamp: at.getTime(), event: { type: 'renamed', name: 'bo' } },
      { stream: 'posts', aggregateId: 'p1', event: { type: 'posted' } },
      { stream: 'users', aggregateId: 'u2', event: { type: 'created', name: 'cy' } },
    ])
    const all = await provider.getEventsFrom(['users', 'posts'], 0)
    assert.deepEqual(
      all.map((e) => [e.stream, e.aggregateId, e.version, e.position, e.event.type]),
      [
        ['users', 'u1', 1, 1, 'created'],
        ['users', 'u1', 2, 2, 'renamed'],
        ['posts', 'p1', 1, 3, 'posted'],
        ['users', 'u2', 1, 4, 'created'],
      ]
    )
    assert.ok(all[0].timestamp instanceof Date)
    assert.equal(all[0].timestamp.getTime(), at.getTime())
    assert.equal(all[1].timestamp.getTime(), at.getTime())
    // the next command on u1 continues at version 3
    await assert.rejects(provider.append('users', 'u1', 2, [{ type: 'renamed', name: 'x' }]), { name: 'VersionError' })
    const [stored] = await provider.append('users', 'u1', 3, [{ type: 'renamed', name: 'dee' }])
    assert.equal(stored.position, 5)
  })

  it('initial events are kept as given: matching StoreEvents are the stored objects, no JSON copy is made', async () => {
    const at = new Date('2026-01-02T03:04:05.000Z')
    const exact = { stream: 's', aggregateId: 'a', version: 1, position: 1, timestamp: at, event: { type: 'one', when: at } }
    const renumbered = { stream: 's', aggregateId: 'a', version: 2, position: 7, timestamp: at, event: { type: 'two' } }
    const provider = createProvider([exact, renumbered])
    const [first, second] = await provider.getEventsFor('s', 'a')
    assert.equal(first, exact)
    assert.equal(first.event.when, at, 'a Date in the payload stays a Date: nothing was copied through JSON')
    assert.notEqual(second, renumbered, 'its position is not the one the store gives it')
    assert.equal(second.position, 2)
    assert.equal(second.event, renumbered.event)
    assert.ok(second.timestamp instanceof Date)
    const invalid = { stream: 's', aggregateId: 'b', version: 1, position: 1, timestamp: new Date(NaN), event: { type: 'x' } }
    const [read] = await createProvider([invalid]).getEventsFor('s', 'b')
    assert.notEqual(read, invalid, 'an invalid Date is not what the store keeps')
    assert.ok(Number.isFinite(read.timestamp.getTime()))
    assert.throws(() => createProvider([{ stream: 's', aggregateId: 'a', version: 1, event: { type: 'big', n: 1n } }]), {
      code: 'INVALID_EVENT',
    })
  })

  it('initial events that repeat a version are refused with a VersionError', () => {
    assert.throws(
      () =>
        createProvider([
          { stream: 's', aggregateId: 'a', version: 1, event: { type: 't' } },
          { stream: 's', aggregateId: 'a', version: 1, event: { type: 't' } },
        ]),
      { name: 'VersionError' }
    )
  })

  it('an append keeps a JSON copy: changing the given objects afterwards does not change the store', async () => {
    const provider = createProvider()
    const event = { type: 'tagged', tags: ['a'], when: new Date(0), gone: undefined }
    await provider.append('s', 'a', 1, [event])
    event.tags.push('b')
    event.type = 'changed'
    const [read] = await provider.getEventsFor('s', 'a')
    assert.deepEqual(read.event, { type: 'tagged', tags: ['a'], when: '1970-01-01T00:00:00.000Z' })
  })

  it('a version conflict names the stream, the aggregate and the existing version, and stores nothing', async () => {
    const provider = createProvider()
    await provider.append('users', 'u1', 1, [{ type: 'a' }, { type: 'b' }])
    const err = await provider.append('users', 'u1', 2, [{ type: 'c' }, { type: 'd' }]).then(
      () => assert.fail('the append succeeded'),
      (e) => e
    )
    assert.ok(err instanceof root().VersionError)
    assert.match(err.message, /stream "users", aggregate "u1": version 2 already exists/)
    assert.equal((await provider.getEventsFrom('users', 0)).length, 2)
    assert.equal((await provider.getLastEventFor('users', 'u1')).version, 2)
  })

  it('an event that becomes something else through toJSON is refused and nothing is stored', async () => {
    const provider = createProvider()
    const sneaky = { type: 'x', toJSON: () => 'not an object' }
    await assert.rejects(provider.append('s', 'a', 1, [{ type: 'ok' }, sneaky]), { code: 'INVALID_EVENT' })
    assert.equal((await provider.getEventsFrom('s', 0)).length, 0)
    // the versions are still free
    assert.equal((await provider.append('s', 'a', 1, [{ type: 'ok' }]))[0].position, 1)
  })

  it('reads hand out the stored StoreEvent objects, as evtstore does (documented: treat events as read-only)', async () => {
    const provider = createProvider()
    const [appended] = await provider.append('s', 'a', 1, [{ type: 't', n: 1 }])
    const [first] = await provider.getEventsFor('s', 'a')
    const [second] = await provider.getEventsFrom('s', 0)
    assert.equal(first, appended)
    assert.equal(second, appended)
    assert.equal(await provider.getLastEventFor('s'), appended)
  })

  it('getEventsFrom pages by limit and by provider.limit', async () => {
    const provider = createProvider()
    for (let v = 1; v <= 5; v++) await provider.append('s', 'a', v, [{ type: 't', v }])
    assert.deepEqual((await provider.getEventsFrom('s', 1, 2)).map((e) => e.position), [2, 3])
    provider.limit = 3
    assert.deepEqual((await provider.getEventsFrom('s', 0)).map((e) => e.position), [1, 2, 3])
  })
})
