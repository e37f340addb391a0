'use strict'
// Property-based round trips (fast-check), on every provider of providers.js:
//
//   (a) random JSON events appended through a command are read back equal by
//       getEventsFor and getEventsFrom, with versions 1..n;
//   (b) random interleavings of commands from several domains on one provider
//       (some with useCache, one with a persisted aggregate) keep each
//       aggregate's versions dense and unique, every attempt ends as a
//       success or a VersionError, and the store holds exactly the events of
//       the successful commands.
//
// The runs are reproducible: the seed is fixed (EVTSTORE_FC_SEED overrides
// it), printed as a diagnostic, and on a failure fast-check prints the seed
// and the path of the smallest failing case to replay it with
// EVTSTORE_FC_SEED=<seed> (and EVTSTORE_FC_PATH=<path>).
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fc = require('fast-check')
const { factories } = require('./providers')
const { root } = require('./pkg')
const { allEvents } = require('./helpers')

const T = { timeout: 120000 }
const SEED = process.env.EVTSTORE_FC_SEED ? Number(process.env.EVTSTORE_FC_SEED) : 20261126
const PATH = process.env.EVTSTORE_FC_PATH || undefined
const ROUND_TRIP_RUNS = 40
const INTERLEAVING_RUNS = 40

/** fc.assert with the fixed seed; the seed is printed whether it passes or not. */
async function check(t, property, numRuns) {
  t.diagnostic(`fast-check seed ${SEED}${PATH ? ` path ${PATH}` : ''}, ${numRuns} runs`)
  await fc.assert(property, { seed: SEED, path: PATH, numRuns, endOnFailure: false })
}

// ------------------------------------------------------------ (a) payloads

// Strings of any code point (NUL and U+10FFFF included, never a lone
// surrogate: those are refused, see bad-input.test.js), printable graphemes
// (emoji sequences, combining marks) and plain ASCII.
const stringUnit = fc.constantFrom('binary', 'grapheme', 'grapheme-ascii')
const text = stringUnit.chain((unit) => fc.string({ unit, maxLength: 12 }))
const json = stringUnit.chain((unit) => fc.jsonValue({ maxDepth: 3, stringUnit: unit }))
const event = fc
  .tuple(text, fc.dictionary(text, json, { maxKeys: 4 }))
  .map(([type, fields]) => ({ ...fields, type }))
const batch = fc.array(event, { minLength: 1, maxLength: 4 })

// ------------------------------------------------------ (b) interleavings

const DOMAINS = [
  { name: 'plain', useCache: false },
  { name: 'cached', useCache: true },
  { name: 'cached too', useCache: true },
  { name: 'persisted', useCache: false, persist: true },
]
const AGGREGATES = 3

const attempt = fc.record({
  domain: fc.nat({ max: DOMAINS.length - 1 }),
  aggregate: fc.nat({ max: AGGREGATES - 1 }),
  amounts: fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 3 }),
})
// groups run one after the other; the attempts of a group run concurrently
const schedule = fc.array(fc.array(attempt, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 6 })

/** Several domains over the same provider and stream, and their `add` commands. */
function makeDomains(provider) {
  const { createAggregate, createDomainV2, createCommands } = root()
  return DOMAINS.map((d) => {
    const ledger = createAggregate({
      stream: 'ledger',
      create: () => ({ total: 0, count: 0 }),
      fold: (ev, agg) => ({ total: agg.total + ev.amount, count: agg.count + 1 }),
      persistAggregate: !!d.persist,
      version: d.persist ? 'v1' : undefined,
    })
    const { domain } = createDomainV2({ provider, useCache: d.useCache }, { ledger })
    const cmds = createCommands(domain.ledger, {
      async add(cmd) {
        return cmd.amounts.map((amount, index) => ({ type: 'added', token: cmd.token, index, amount }))
      },
    })
    return { ...d, domain, cmds }
  })
}

/** The fold of stored events up to `version`. */
function foldUpTo(events, version) {
  let total = 0
  let count = 0
  for (const e of events) {
    if (e.version > version) break
    total += e.event.amount
    count++
  }
  return { total, count }
}

// ------------------------------------------------------------ the runner

for (const factory of factories) {
  if (factory.skip || factory.fail) {
    describe(`properties [${factory.name}]`, () => {
      it('needs its server', factory.skip ? { skip: factory.skip } : {}, () => {
        throw new Error(factory.fail)
      })
    })
    continue
  }

  describe(`properties [${factory.name}]`, () => {
    // one provider for all runs: every run works on aggregate ids of its own
    const env = {}
    let runs = 0

    before(async () => {
      env.ctx = await factory.create()
      env.provider = env.ctx.provider
      const { createAggregate, createDomainV2, createCommands } = root()
      const counting = createAggregate({
        stream: 'payloads',
        create: () => ({ count: 0 }),
        fold: (ev, agg) => ({ count: agg.count + 1 }),
      })
      const { domain } = createDomainV2({ provider: env.provider }, { counting })
      env.emit = createCommands(domain.counting, { emit: async (cmd) => cmd.events }).emit
      env.domains = makeDomains(env.provider)
    })

    after(async () => {
      if (env.ctx) await env.ctx.cleanup()
    })

    it('(a) random JSON events round-trip exactly through getEventsFor and getEventsFrom', T, async (t) => {
      const { provider } = env
      const property = fc.asyncProperty(batch, async (events) => {
        // what the server itself refuses is checked by its own tests
        fc.pre(!env.ctx.serverRefuses || !events.some((e) => env.ctx.serverRefuses(e)))
        const id = `run-${++runs}`
        const last = await provider.getLastEventFor('payloads')
        const after = last ? last.position : 0

        const aggregate = await env.emit(id, { events })
        assert.equal(aggregate.version, events.length)
        assert.equal(aggregate.count, events.length)

        const forAggregate = await provider.getEventsFor('payloads', id)
        assert.deepEqual(
          forAggregate.map((e) => [e.aggregateId, e.version]),
          events.map((_, i) => [id, i + 1])
        )
        assert.deepEqual(
          forAggregate.map((e) => e.event),
          events
        )
        // nothing else writes to this stream: the events after the last one
        // before this run are exactly these, in order
        const fromPosition = await provider.getEventsFrom(['payloads'], after)
        assert.deepEqual(
          fromPosition.map((e) => [e.aggregateId, e.version, e.event]),
          events.map((ev, i) => [id, i + 1, ev])
        )
        assert.deepEqual(
          fromPosition.map((e) => e.position),
          forAggregate.map((e) => e.position)
        )
      })
      await check(t, property, ROUND_TRIP_RUNS)
    })

    it('(b) interleaved commands from several domains keep versions dense and unique and store exactly the successful commands', T, async (t) => {
      const { provider, domains } = env
      const { VersionError } = root()
      const seen = { attempts: 0, conflicts: 0 }
      const property = fc.asyncProperty(schedule, async (groups) => {
        const run = ++runs
        const idOf = (n) => `run-${run}-agg-${n}`
        const successes = []
        let conflicts = 0
        let attempts = 0

        for (const group of groups) {
          const results = await Promise.allSettled(
            group.map((a, i) => {
              attempts++
              const token = `${run}.${attempts}.${i}`
              const id = idOf(a.aggregate)
              return domains[a.domain].cmds.add(id, { amounts: a.amounts, token }).then((agg) => ({ agg, a, token, id }))
            })
          )
          for (const r of results) {
            if (r.status === 'fulfilled') successes.push(r.value)
            else if (r.reason instanceof VersionError && r.reason.code === 'VERSION_CONFLICT') conflicts++
            else throw r.reason // anything else is a bug
          }
        }
        seen.attempts += attempts
        seen.conflicts += conflicts
        assert.equal(successes.length + conflicts, attempts, 'every attempt is a success or a VersionError')
        assert.ok(successes.length >= groups.length, 'each group has at least one success')

        const byToken = new Map(successes.map((s) => [s.token, s]))
        let storedCount = 0
        for (let n = 0; n < AGGREGATES; n++) {
          const id = idOf(n)
          const stored = await provider.getEventsFor('ledger', id)
          storedCount += stored.length
          // dense and unique: exactly 1..m in order
          assert.deepEqual(
            stored.map((e) => e.version),
            stored.map((_, i) => i + 1),
            `versions of ${id}`
          )
          for (const e of stored) {
            const s = byToken.get(e.event.token)
            assert.ok(s, `stored event ${JSON.stringify(e.event)} comes from no successful command`)
            assert.equal(s.id, id)
            // a command's events sit at consecutive versions ending at the version it returned
            assert.equal(e.version, s.agg.version - s.a.amounts.length + 1 + e.event.index)
            assert.equal(e.event.amount, s.a.amounts[e.event.index])
          }
          // what each successful command returned is the fold of the stored events up to its version
          for (const s of successes.filter((x) => x.id === id)) {
            const { total, count } = foldUpTo(stored, s.agg.version)
            assert.equal(s.agg.total, total, `total returned by command ${s.token}`)
            assert.equal(s.agg.count, count)
          }
          // every domain, cached or not, now reads the same aggregate
          const expected = { ...foldUpTo(stored, Infinity), version: stored.length }
          for (const d of domains) {
            const agg = await d.domain.ledger.getAggregate(id)
            assert.deepEqual({ total: agg.total, count: agg.count, version: agg.version }, expected, `${d.name} domain`)
          }
        }
        const produced = successes.reduce((sum, s) => sum + s.a.amounts.length, 0)
        assert.equal(storedCount, produced, 'stored events = events of the successful commands')

        // the store-wide order holds the same events, positions strictly increasing
        const ids = new Set(Array.from({ length: AGGREGATES }, (_, n) => idOf(n)))
        const fromAll = (await allEvents(provider, ['ledger'])).filter((e) => ids.has(e.aggregateId))
        assert.equal(fromAll.length, storedCount)
        for (let i = 1; i < fromAll.length; i++) assert.ok(fromAll[i].position > fromAll[i - 1].position)
      })
      await check(t, property, INTERLEAVING_RUNS)
      t.diagnostic(`${seen.attempts} commands, ${seen.conflicts} of them VersionErrors`)
      // the schedules do make commands race: otherwise this tests nothing
      assert.ok(seen.conflicts > 0, 'no command ever met a version conflict')
    })
  })
}
