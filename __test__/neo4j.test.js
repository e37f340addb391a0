'use strict'
// Neo4j specifics, on each running test server (3.5, 4.4, 5): wake-ups
// across processes (probing), several writer processes against one started
// handler in another (no event skipped or repeated, positions in commit
// order), and data written by evtstore@12.0.1's own Neo4j providers
// (DateTime positions) read in its order and extended by us.
//
// Needs the servers of scripts/neo4j.sh (EVTSTORE_TEST_NEO4J*_URL); see neo4j-server.js.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { provider: providerModule } = require('./pkg')
const { neo4jRequirement, driverFor, newLabels, run, removeLabels } = require('./neo4j-server')
const { delay, makeDomain } = require('./helpers')
const { writersAgainstHandler, wakeUpsFromAnotherProcess } = require('./cross-process')

/** Cleanups run last-registered first, after the test. */
function cleanups(t) {
  const fns = []
  t.after(async () => {
    for (const fn of fns.reverse()) await fn()
  })
  return (fn) => fns.push(fn)
}

/** New labels on the server, removed (with a driver to do it) when the test ends. */
function scratchLabels(later, url) {
  const labels = newLabels()
  const admin = driverFor(url)
  later(async () => {
    await removeLabels(admin, labels)
    await admin.close()
  })
  return { labels, admin }
}

/** describe() for one server version: skipped with the reason without it, failing under CI. */
function describeNeo4j(version, fn) {
  const req = neo4jRequirement(version)
  if (!req.url) {
    return describe(`Neo4j ${version}`, () => {
      it('needs its server', req.skip ? { skip: req.skip } : {}, () => {
        throw new Error(req.fail)
      })
    })
  }
  return describe(`Neo4j ${version}`, () => fn(req.url))
}

describe('Neo4j options (no server needed)', () => {
  const { fromNeo4jOptions } = require('../lib/engines/neo4j')

  it("a neo4j-driver Driver's address and basic-auth login are read from the object", async () => {
    const neo4j = require('neo4j-driver')
    const driver = neo4j.driver('bolt://db.example:7999', neo4j.auth.basic('app', 's3cret'))
    try {
      const target = await fromNeo4jOptions({ client: Promise.resolve(driver), events: 'ev', bookmarks: 'bm' }, 'test')
      assert.deepEqual(target.options, {
        neo4j: { url: 'bolt://db.example:7999', user: 'app', password: 's3cret', events: 'ev', bookmarks: 'bm' },
      })
    } finally {
      await driver.close()
    }
  })

  it('refuses what it cannot use, at once or when the Promise resolves', async () => {
    const neo4j = require('neo4j-driver')
    const code = (c) => (err) => err.code === c
    assert.throws(() => fromNeo4jOptions({ client: {} }, 'test'), code('INVALID_ARGUMENT'))
    assert.throws(() => fromNeo4jOptions({ url: 'bolt://x:1', client: {} }, 'test'), code('INVALID_ARGUMENT'))
    assert.throws(() => fromNeo4jOptions({ url: 'http://x:7474' }, 'test'), code('INVALID_ARGUMENT'))
    assert.throws(() => fromNeo4jOptions({}, 'test'), code('INVALID_ARGUMENT'))
    assert.throws(() => fromNeo4jOptions({ url: 'bolt://x:1', events: 'a-b' }, 'test'), code('INVALID_NAME'))
    await assert.rejects(fromNeo4jOptions({ client: Promise.resolve(42) }, 'test'), code('INVALID_ARGUMENT'))
    const tls = neo4j.driver('bolt://x:1', neo4j.auth.basic('a', 'b'), { encrypted: 'ENCRYPTION_ON' })
    const bearer = neo4j.driver('bolt://x:1', neo4j.auth.bearer('token'))
    try {
      await assert.rejects(fromNeo4jOptions({ client: tls }, 'test'), code('NOT_SUPPORTED'))
      await assert.rejects(fromNeo4jOptions({ client: bearer }, 'test'), code('NOT_SUPPORTED'))
    } finally {
      await tls.close()
      await bearer.close()
    }
  })
})

for (const version of /** @type {const} */ (['3.5', '4.4', '5'])) {
  describeNeo4j(version, (url) => {
    it('a started handler is woken by another process’s append by probing, within 50 ms', { timeout: 60000 }, async (t) => {
      const later = cleanups(t)
      const { labels } = scratchLabels(later, url)
      await providerModule('neo4j').migrate({ url, ...labels })
      const provider = providerModule('neo4j').createProvider({ url, ...labels })
      later(() => provider.close())
      await wakeUpsFromAnotherProcess(t, {
        provider,
        store: { form: 'neo4j-url', url, ...labels },
        count: 10,
        gapMs: 120,
        pollInterval: 5000,
        medianAtMost: 50,
        eachUnder: 1000,
        why: 'not found by probing',
        note: 'probe every 20 ms',
      })
    })

    it('a provider used without migrate() (as evtstore allows) sets its label up at the first append', { timeout: 60000 }, async (t) => {
      const later = cleanups(t)
      const { labels } = scratchLabels(later, url)
      const provider = providerModule('neo4j-v3').createProvider({ url, ...labels })
      later(() => provider.close())
      const [first] = await provider.append('users', 'u1', 1, [{ type: 'created' }])
      assert.equal(first.position, 1)
      await assert.rejects(provider.append('users', 'u1', 1, [{ type: 'again' }]), (e) => e.name === 'VersionError')
      assert.deepEqual((await provider.getEventsFrom('users', 0)).map((e) => e.event.type), ['created'])
    })

    const MULTI =
      '4 writer processes (100 commands each, 8 in flight; a url and a neo4j-driver Driver) and a started handler ' +
      'in a 5th: every event handled once, in position order'
    it(MULTI, { timeout: 180000 }, async (t) => {
      const later = cleanups(t)
      const { labels, admin } = scratchLabels(later, url)
      await providerModule('neo4j').migrate({ url, ...labels })
      await writersAgainstHandler(t, {
        store: { form: 'neo4j-url', url, ...labels },
        writers: { forms: ['neo4j-url', 'neo4j-driver', 'neo4j-url', 'neo4j-driver'], commands: 100, inFlight: 8, timeoutMs: 150000 },
        storedPositions: async () => {
          const stored = await run(admin, `MATCH (ev:\`${labels.events}\`) RETURN ev.position AS p ORDER BY p`)
          return stored.map((r) => Number(r.p))
        },
        checkStore: async (stored, expected) => {
          assert.deepEqual(stored, Array.from({ length: expected }, (_, i) => i + 1), 'positions are dense')
        },
      })
    })

    if (version !== '5') {
      // evtstore's v3 provider's schema runs on 3.5 and 4.4, its v4 one on 4.4 only
      const entry = version === '3.5' ? 'neo4j-v3' : 'neo4j'
      it(`events written by evtstore@12.0.1's provider/${entry} (DateTime positions) are read in its order and extended by us`, { timeout: 60000 }, async (t) => {
        const later = cleanups(t)
        const { labels, admin } = scratchLabels(later, url)
        const theirs = require(`evtstore/provider/${entry}`)
        const client = driverFor(url)
        later(() => client.close())
        // evtstore does not retry a transient failure (a schema change settling)
        const retried = async (fn) => {
          for (let attempt = 0; ; attempt++) {
            try {
              return await fn()
            } catch (err) {
              if (attempt > 20 || !/TransientError/.test(String(err.code))) throw err
              await delay(50)
            }
          }
        }
        await retried(() => theirs.migrate({ client, ...labels }))
        const old = theirs.createProvider({ client, ...labels })
        const theirAppend = (id, version, events) =>
          retried(() => old.append('users', id, version, old.createEvents('users', id, version, events)))
        await theirAppend('u1', 1, [{ type: 'created', name: 'a' }])
        await delay(5)
        await theirAppend('u2', 1, [{ type: 'created', name: 'b' }])
        await delay(5)
        await theirAppend('u1', 2, [{ type: 'renamed', name: 'c' }])
        const theirEvents = await old.getEventsFrom('users', 0)
        assert.equal(theirEvents.length, 3)
        await old.setPosition('h', theirEvents[0].position)

        // ours: migrate over their schema, then read and extend
        await providerModule(entry).migrate({ url, ...labels })
        const ours = providerModule(entry).createProvider({ url, ...labels })
        later(() => ours.close())
        const read = await ours.getEventsFrom('users', 0)
        assert.deepEqual(
          read.map((e) => [e.aggregateId, e.version, e.position, e.event.type]),
          theirEvents.map((e) => [e.aggregateId, e.version, e.position, e.event.type]),
          "evtstore's order, its positions as epoch milliseconds"
        )
        assert.equal(await ours.getPosition('h'), theirEvents[0].position, "evtstore's bookmark text as epoch ms")
        assert.deepEqual((await ours.getEventsFrom('users', theirEvents[0].position)).map((e) => e.aggregateId), ['u2', 'u1'])
        assert.deepEqual((await ours.getEventsFor('users', 'u1')).map((e) => e.version), [1, 2])

        // a command through our domain extends their aggregate after their events
        const { userCmd } = makeDomain(ours)
        await assert.rejects(userCmd.create('u1', { name: 'again' }), /exists/i)
        await userCmd.login('u1', {})
        const all = await ours.getEventsFrom('users', 0)
        assert.equal(all.length, 4)
        assert.deepEqual(all[3].event, { type: 'loggedIn' })
        assert.equal(all[3].version, 3)
        for (let i = 1; i < all.length; i++) assert.ok(all[i].position > all[i - 1].position)
        // their version key still guards their aggregates
        await assert.rejects(ours.append('users', 'u2', 1, [{ type: 'clash' }]), (e) => e.name === 'VersionError' || e.code === 'VERSION_CONFLICT')
        const stored = await run(admin, `MATCH (ev:\`${labels.events}\` {aggregateId: 'u1', version: 3}) RETURN ev._streamIdVersion AS k, ev.event AS e`)
        assert.deepEqual(stored, [{ k: 'users_u1_3', e: '{"type":"loggedIn"}' }], "our node in evtstore's shape")
        t.diagnostic(`evtstore's positions ${theirEvents.map((e) => e.position).join(', ')}; ours continue at ${all[3].position}`)
      })
    }

    // evtstore's users pass the Driver of the neo4j-driver they have: 4.4 (its
    // own dependency), 5 or 6; each is only read, never used to connect
    for (const mod of ['neo4j-driver-4', 'neo4j-driver', 'neo4j-driver-6']) {
      it(`a ${mod} ${require(`${mod}/package.json`).version} Driver: migrate and commands through both entry points`, { timeout: 60000 }, async (t) => {
        const later = cleanups(t)
        const { labels } = scratchLabels(later, url)
        const neo4j = require(mod)
        const driver = neo4j.driver(url, neo4j.auth.basic('neo4j', 'password'))
        later(() => driver.close())
        for (const entry of ['neo4j', 'neo4j-v3']) {
          await providerModule(entry).migrate({ client: driver, ...labels })
          const provider = providerModule(entry).createProvider({ client: Promise.resolve(driver), ...labels })
          later(() => provider.close())
          const { userCmd, domain } = makeDomain(provider)
          await userCmd.create(`${entry}-u`, { name: entry })
          assert.equal((await domain.user.getAggregate(`${entry}-u`)).version, 1)
        }
        const reader = providerModule('neo4j').createProvider({ url, ...labels })
        later(() => reader.close())
        const all = await reader.getEventsFrom('users', 0)
        assert.deepEqual(
          all.map((e) => [e.aggregateId, e.version]),
          [
            ['neo4j-u', 1],
            ['neo4j-v3-u', 1],
          ]
        )
      })
    }
  })
}
