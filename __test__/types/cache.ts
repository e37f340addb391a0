// The useCache size bound: `cacheSize` is accepted by every function that
// takes `useCache`, and only as a number.
import {
  createAggregate,
  createDomainV2,
  createDomain,
  createDomainV1,
  createProvidedAggregate,
  createPersistedAggregate,
  DomainOptions,
} from 'evtstore'
import { createProvider } from 'evtstore/provider/memory'

type CountEvt = { type: 'added'; by: number } | { type: 'reset' }
type CountAgg = { total: number }

const counter = createAggregate<CountEvt, CountAgg, 'counters'>({
  stream: 'counters',
  create: () => ({ total: 0 }),
  fold: (ev, agg) => (ev.type === 'added' ? { total: agg.total + ev.by } : { total: 0 }),
})

const provider = createProvider<CountEvt>()

// useCache alone keeps compiling, as with evtstore
createDomainV2({ provider, useCache: true }, { counter })

// a bounded cache
const { domain } = createDomainV2({ provider, useCache: true, cacheSize: 10_000 }, { counter })
const loaded: Promise<{ total: number; aggregateId: string; version: number }> = domain.counter.getAggregate('c1')
void loaded
createDomain({ provider, useCache: true, cacheSize: 50 }, { counter })

const v1Options: DomainOptions<CountEvt, CountAgg> = {
  aggregate: () => ({ total: 0 }),
  stream: 'counters',
  fold: (ev, agg) => (ev.type === 'added' ? { total: agg.total + ev.by } : { total: 0 }),
  provider,
  useCache: true,
  cacheSize: 100,
}
type CountCmd = { type: 'add'; by: number }
createDomainV1<CountEvt, CountAgg, CountCmd>(v1Options, {
  async add(cmd) {
    return { type: 'added', by: cmd.by }
  },
})

createProvidedAggregate({ ...counter, provider, useCache: true, cacheSize: 1 })
createPersistedAggregate({ ...counter, version: '1', persistAggregate: true, provider, useCache: true, cacheSize: 1 })

// a size that is no number
// @ts-expect-error
createDomainV2({ provider, useCache: true, cacheSize: '10000' }, { counter })

// the bound is its own option: useCache stays a boolean
// @ts-expect-error
createDomainV2({ provider, useCache: { max: 10 } }, { counter })

const badV1: DomainOptions<CountEvt, CountAgg> = {
  ...v1Options,
  // @ts-expect-error
  cacheSize: true,
}
void badV1

// @ts-expect-error
createProvidedAggregate({ ...counter, provider, useCache: true, cacheSize: null })
