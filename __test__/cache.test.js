'use strict'
// useCache with a size bound (`cacheSize`): least recently used aggregates
// leave the cache, an evicted aggregate is folded from the store again and is
// still the right aggregate, and the cache never holds more than the bound.
//
// The cache is not visible from outside, so these tests look at what the
// facade asks the provider: a plain JavaScript provider wraps a real one and
// records every getEventsFor call. A cached aggregate is read from its cached
// position on; an aggregate that is not cached is read from the start
// (fromPosition undefined).
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { root, provider: providerModule } = require('./pkg')
const { createJsProvider } = require('./js-provider')

const BASES = {
  memory: () => providerModule('memory').createProvider(),
  'plain JavaScript provider': () => createJsProvider(),
}

/** A provider that forwards to `inner` and records the getEventsFor calls. */
function recording(inner) {
  /** @type {{ stream: string, id: string, from: any }[]} */
  const reads = []
  const provider = {
    driver: 'recording',
    onError: inner.onError,
    limit: inner.limit,
    getPosition: (b) => inner.getPosition(b),
    setPosition: (b, p) => inner.setPosition(b, p),
    getEventsFrom: (s, p, l) => inner.getEventsFrom(s, p, l),
    getEventsFor(stream, id, from) {
      reads.push({ stream, id, from })
      return inner.getEventsFor(stream, id, from)
    },
    getLastEventFor: (s, id) => inner.getLastEventFor(s, id),
    createEvents: (...args) => inner.createEvents(...args),
    append: (...args) => inner.append(...args),
  }
  return {
    provider,
    reads,
    /** Forgets the recorded reads. */
    clear: () => reads.splice(0),
    /** Whether the last read of `id` came from the cache. */
    hit: (id) => {
      const last = reads.filter((r) => r.id === id).pop()
      assert.ok(last, `no read of ${id}`)
      return last.from !== undefined
    },
  }
}

const counter = () =>
  root().createAggregate({
    stream: 'counters',
    create: () => ({ total: 0, adds: 0 }),
    fold: (ev, agg) => (ev.type === 'added' ? { total: agg.total + ev.by, adds: agg.adds + 1 } : { total: 0 }),
  })

function counterDomain(provider, opts) {
  const { createDomainV2, createCommands } = root()
  const { domain } = createDomainV2({ provider, ...opts }, { counter: counter() })
  const cmd = createCommands(domain.counter, {
    async add(c) {
      return { type: 'added', by: c.by }
    },
    async addTwice(c) {
      return [
        { type: 'added', by: c.by },
        { type: 'added', by: c.by },
      ]
    },
  })
  return { domain, cmd }
}

/** Stores `n` counters c0..c(n-1), counter ci with i + 1 events. */
async function seed(provider, n) {
  const { cmd } = counterDomain(provider, {})
  for (let i = 0; i < n; i++) {
    for (let k = 0; k <= i; k++) await cmd.add(`c${i}`, { by: k + 1 })
  }
}

const expected = (i) => ({ total: ((i + 1) * (i + 2)) / 2, adds: i + 1, aggregateId: `c${i}`, version: i + 1 })

for (const [baseName, makeBase] of Object.entries(BASES)) {
  describe(`useCache with cacheSize (${baseName})`, () => {
    it('keeps the most recently used aggregates: a hit refreshes an entry, the least recently used one leaves', async () => {
      const base = makeBase()
      await seed(base, 3)
      const rec = recording(base)
      const { domain } = counterDomain(rec.provider, { useCache: true, cacheSize: 2 })
      const load = async (i) => assert.deepEqual(await domain.counter.getAggregate(`c${i}`), expected(i))

      await load(0)
      await load(1)
      await load(0) // a hit: c0 becomes the most recent, c1 the least
      assert.equal(rec.hit('c0'), true)
      await load(2) // evicts c1, not c0
      rec.clear()
      await load(0)
      assert.equal(rec.hit('c0'), true, 'c0 was used after c1, so it should have stayed')
      await load(1)
      assert.equal(rec.hit('c1'), false, 'c1 was the least recently used and should have been evicted')
    })

    it('never holds more aggregates than cacheSize, and without cacheSize keeps every one (as evtstore)', async () => {
      const base = makeBase()
      const n = 12
      await seed(base, n)
      for (const [opts, hits] of [
        [{ useCache: true, cacheSize: 1 }, 1],
        [{ useCache: true, cacheSize: 5 }, 5],
        [{ useCache: true, cacheSize: n }, n],
        [{ useCache: true, cacheSize: 1000 }, n],
        [{ useCache: true }, n],
        [{ useCache: false, cacheSize: 5 }, 0],
        [{}, 0],
      ]) {
        const rec = recording(base)
        const { domain } = counterDomain(rec.provider, opts)
        for (let i = 0; i < n; i++) await domain.counter.getAggregate(`c${i}`)
        rec.clear()
        // most recent first: every aggregate the cache still holds is a hit
        // before the first miss, which then evicts the rest
        let found = 0
        for (let i = n - 1; i >= 0; i--) {
          assert.deepEqual(await domain.counter.getAggregate(`c${i}`), expected(i))
          if (rec.hit(`c${i}`)) found++
        }
        assert.equal(found, hits, `cached aggregates with ${JSON.stringify(opts)}`)
      }
    })

    it('a random sequence of loads hits and misses exactly as a reference LRU list of cacheSize entries', async () => {
      const base = makeBase()
      const ids = 30
      await seed(base, ids)
      const rec = recording(base)
      const size = 7
      const { domain } = counterDomain(rec.provider, { useCache: true, cacheSize: size })
      /** the model: ids from least to most recently used */
      const lru = []
      let x = 12345
      const rand = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648
      let hits = 0
      for (let step = 0; step < 2000; step++) {
        // a skewed choice, so that some ids stay hot and others come back after eviction
        const i = Math.floor(rand() * rand() * ids)
        const id = `c${i}`
        rec.clear()
        assert.deepEqual(await domain.counter.getAggregate(id), expected(i))
        const at = lru.indexOf(id)
        assert.equal(rec.hit(id), at >= 0, `step ${step}: ${id} ${at >= 0 ? 'should have been' : 'should not have been'} cached`)
        if (at >= 0) {
          hits++
          lru.splice(at, 1)
        }
        lru.push(id)
        if (lru.length > size) lru.shift()
      }
      assert.ok(hits > 200 && hits < 1800, `the sequence should mix hits and misses (${hits} hits)`)
    })

    it('an evicted aggregate is folded again from the store, with what other writers appended meanwhile', async () => {
      const base = makeBase()
      await seed(base, 2)
      const rec = recording(base)
      const bounded = counterDomain(rec.provider, { useCache: true, cacheSize: 1 })
      const other = counterDomain(base, {})
      const uncached = counterDomain(base, {})

      await bounded.domain.counter.getAggregate('c0')
      await other.cmd.add('c0', { by: 100 }) // c0 changes behind the cache's back
      await bounded.domain.counter.getAggregate('c1') // evicts c0
      rec.clear()
      const c0 = await bounded.domain.counter.getAggregate('c0')
      assert.equal(rec.hit('c0'), false)
      assert.deepEqual(c0, await uncached.domain.counter.getAggregate('c0'))
      assert.deepEqual(c0, { total: 101, adds: 2, aggregateId: 'c0', version: 2 })

      // and a cached aggregate still picks up newer events
      await other.cmd.add('c0', { by: 1000 })
      rec.clear()
      const again = await bounded.domain.counter.getAggregate('c0')
      assert.equal(rec.hit('c0'), true)
      assert.deepEqual(again, await uncached.domain.counter.getAggregate('c0'))
      assert.equal(again.total, 1101)
    })

    it('commands through a cache of one aggregate, alternating between aggregates, store dense versions', async () => {
      const base = makeBase()
      const { cmd, domain } = counterDomain(recording(base).provider, { useCache: true, cacheSize: 1 })
      for (let round = 0; round < 5; round++) {
        for (const id of ['a', 'b', 'c']) {
          const next = round % 2 ? await cmd.addTwice(id, { by: 1 }) : await cmd.add(id, { by: 1 })
          assert.equal(next.version, next.adds)
        }
      }
      for (const id of ['a', 'b', 'c']) {
        const stored = await base.getEventsFor('counters', id)
        assert.deepEqual(
          stored.map((e) => e.version),
          Array.from({ length: 7 }, (_, i) => i + 1)
        )
        assert.deepEqual(await domain.counter.getAggregate(id), { total: 7, adds: 7, aggregateId: id, version: 7 })
      }
    })

    it('concurrent loads of more aggregates than the bound all get the right aggregate and leave at most cacheSize cached', async () => {
      const base = makeBase()
      const n = 20
      await seed(base, n)
      const rec = recording(base)
      const { domain } = counterDomain(rec.provider, { useCache: true, cacheSize: 4 })
      for (let round = 0; round < 3; round++) {
        const ids = Array.from({ length: n }, (_, i) => (i * 7 + round) % n)
        const got = await Promise.all(ids.map((i) => domain.counter.getAggregate(`c${i}`)))
        got.forEach((agg, k) => assert.deepEqual(agg, expected(ids[k])))
      }
      rec.clear()
      // read each once: hits can only come from what was cached before
      let found = 0
      for (let i = 0; i < n; i++) {
        await domain.counter.getAggregate(`c${i}`)
        if (rec.hit(`c${i}`)) found++
      }
      assert.ok(found <= 4, `${found} aggregates were cached with cacheSize 4`)
    })
  })
}

describe('cacheSize on the other entry points', () => {
  it('createDomainV1 bounds its cache too', async () => {
    const { createDomainV1 } = root()
    const base = BASES.memory()
    await seed(base, 3)
    const rec = recording(base)
    const agg = counter()
    const v1 = createDomainV1(
      { aggregate: agg.aggregate, stream: agg.stream, fold: agg.fold, provider: rec.provider, useCache: true, cacheSize: 2 },
      {
        async add(c) {
          return { type: 'added', by: c.by }
        },
      }
    )
    for (const i of [0, 1, 2]) assert.deepEqual((await v1.getAggregate(`c${i}`)).aggregate, expected(i))
    rec.clear()
    await v1.getAggregate('c2')
    await v1.getAggregate('c1')
    await v1.getAggregate('c0')
    assert.deepEqual([rec.hit('c2'), rec.hit('c1'), rec.hit('c0')], [true, true, false])
    const next = await v1.command.add('c0', { by: 1 })
    assert.equal(next.version, 2)
  })

  it('createProvidedAggregate and createPersistedAggregate take cacheSize', async () => {
    const { createProvidedAggregate, createPersistedAggregate } = root()
    const base = BASES.memory()
    await seed(base, 3)
    const rec = recording(base)
    const provided = createProvidedAggregate({ ...counter(), provider: rec.provider, useCache: true, cacheSize: 1 })
    for (const i of [0, 1, 2]) assert.deepEqual(await provided.getAggregate(`c${i}`), expected(i))
    rec.clear()
    await provided.getAggregate('c2')
    await provided.getAggregate('c1')
    assert.deepEqual([rec.hit('c2'), rec.hit('c1')], [true, false])

    // no persisted copies in these events: the persisted aggregate folds them, through its cache
    const persisted = createPersistedAggregate({
      ...counter(),
      version: '1',
      persistAggregate: true,
      provider: rec.provider,
      useCache: true,
      cacheSize: 1,
    })
    for (const i of [0, 1, 2]) assert.deepEqual(await persisted.getAggregate(`c${i}`), expected(i))
    rec.clear()
    await persisted.getAggregate('c2')
    await persisted.getAggregate('c1')
    assert.deepEqual([rec.hit('c2'), rec.hit('c1')], [true, false])
  })

  it('a cacheSize that is not a positive integer is refused with INVALID_ARGUMENT, with or without useCache', () => {
    const { createDomainV2, createDomain, createDomainV1, createProvidedAggregate, createPersistedAggregate } = root()
    const provider = BASES.memory()
    const agg = counter()
    const entryPoints = {
      createDomainV2: (opts) => createDomainV2({ provider, ...opts }, { counter: agg }),
      createDomain: (opts) => createDomain({ provider, ...opts }, { counter: agg }),
      createDomainV1: (opts) =>
        createDomainV1({ aggregate: agg.aggregate, stream: agg.stream, fold: agg.fold, provider, ...opts }, {}),
      createProvidedAggregate: (opts) => createProvidedAggregate({ ...agg, provider, ...opts }),
      createPersistedAggregate: (opts) =>
        createPersistedAggregate({ ...agg, version: '1', persistAggregate: true, provider, ...opts }),
    }
    const bad = [0, -1, 1.5, NaN, Infinity, 2 ** 53, '10', null, true, {}, [3], 10n]
    for (const [name, make] of Object.entries(entryPoints)) {
      for (const cacheSize of bad) {
        for (const useCache of [true, false]) {
          assert.throws(
            () => make({ useCache, cacheSize }),
            (err) => {
              assert.equal(err.code, 'INVALID_ARGUMENT', `${name} with cacheSize ${String(cacheSize)}: ${err.message}`)
              assert.match(err.message, /cacheSize/)
              return true
            },
            `${name} accepted cacheSize ${String(cacheSize)}`
          )
        }
      }
      for (const cacheSize of [1, 2, 10000, 2 ** 53 - 1, undefined]) {
        assert.doesNotThrow(() => make({ useCache: true, cacheSize }), `${name} refused cacheSize ${cacheSize}`)
      }
    }
  })
})
