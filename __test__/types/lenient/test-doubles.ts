// Test doubles typed with evtstore's exported types, as application test
// suites write them to run code without a store.
import type { Handler, Domain, ProviderBookmark, HandlerHooks, ProvidedAggregate, BaseAggregate } from 'evtstore'
import { createDomainV1 } from 'evtstore'
import { createProvider } from 'evtstore/provider/memory'

type Evt = { type: 'done' }
type Agg = { done: boolean }
type Cmd = { type: 'finish' }

export function fakeHandler(): Handler<Evt> {
  const callbacks: Array<(...args: any[]) => any> = []
  return {
    name: 'fake',
    start() {},
    stop() {},
    reset() {},
    runOnce: async () => callbacks.length,
    handle: (_type, cb) => void callbacks.push(cb),
    handlers: () => {},
  }
}

export const memoryBookmark: ProviderBookmark = {
  name: 'memory',
  getPosition: async () => 0,
  setPosition: async () => {},
}

export const hooks: HandlerHooks = { preRun: async () => {}, postRun: async () => {} }

export const fakeAggregate: ProvidedAggregate<Evt, Agg> = {
  stream: 'things',
  provider: createProvider<Evt>(),
  getAggregate: async (id) => ({ aggregateId: id, version: 0, done: false }),
  toNextAggregate: (prev: Agg & BaseAggregate) => ({ ...prev, done: true }),
}

// a real domain kept in a variable of the exported Domain type
export const domain: Domain<Evt, Agg, Cmd> = createDomainV1<Evt, Agg, Cmd>(
  { aggregate: () => ({ done: false }), stream: 'things', fold: () => ({ done: true }), provider: createProvider<Evt>() },
  { finish: async () => ({ type: 'done' }) }
)

// and a fake one
export const fakeDomain: Domain<Evt, Agg, Cmd> = {
  handler: () => fakeHandler(),
  command: { finish: async (id) => ({ aggregateId: id, version: 1, done: true }) },
  getAggregate: async () => {
    throw new Error('not in this test')
  },
}

export async function use(h: Handler<Evt>) {
  h.stop()
  return h.runOnce()
}
