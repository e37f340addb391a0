// Aggregates whose generics are inferred from create() and fold(), as short
// applications and prototypes write them.
import { createAggregate, createDomain, createCommands } from 'evtstore'
import { createProvider } from 'evtstore/provider/memory'

type Counted = { type: 'inc' } | { type: 'dec'; by: number }

// the fold returns a key the aggregate does not have (evtstore: allowed)
export const counter = createAggregate({
  stream: 'counters',
  create: () => ({ count: 0 }),
  fold: (ev: { type: 'inc' }, prev) => ({ count: prev.count + 1, lastType: ev.type }),
})

// the fold spreads the previous aggregate
export const spread = createAggregate({
  stream: 'spread',
  create: () => ({ count: 0, label: '' }),
  fold: (ev: Counted, prev) => ({ ...prev, count: ev.type === 'inc' ? prev.count + 1 : prev.count - ev.by }),
})

// a switch with a default that returns nothing new
export const switched = createAggregate({
  stream: 'switched',
  create: () => ({ total: 0, history: [] as number[] }),
  fold: (ev: Counted, prev) => {
    switch (ev.type) {
      case 'inc':
        return { total: prev.total + 1, history: [...prev.history, 1] }
      case 'dec':
        return { total: prev.total - ev.by }
      default:
        return {}
    }
  },
})

// explicit generics: a returned key the aggregate lacks, next to one of its own
export const labelled = createAggregate<Counted, { count: number }, 'labelled'>({
  stream: 'labelled',
  create: () => ({ count: 0 }),
  fold: (ev, prev) => ({ count: prev.count + 1, note: ev.type }),
})

// the fold uses the meta argument
export const stamped = createAggregate({
  stream: 'stamped',
  create: () => ({ updatedAt: new Date(0), seen: 0 }),
  fold: (_ev: Counted, prev, meta) => ({ updatedAt: meta.timestamp, seen: prev.seen + 1 }),
})

const { domain, createHandler } = createDomain({ provider: createProvider() }, { counter, spread, switched, stamped })

export const cmd = createCommands<Counted, { count: number; label: string }, { type: 'bump' } | { type: 'drop'; by: number }>(
  domain.spread,
  {
    async bump() {
      return { type: 'inc' }
    },
    async drop(c, agg) {
      if (agg.count < c.by) return
      return [{ type: 'dec', by: c.by }, { type: 'inc' }]
    },
  }
)

export async function use() {
  const agg = await domain.spread.getAggregate('s1')
  const n: number = agg.count + agg.version
  const h = createHandler('counters-model', ['counters', 'spread'])
  h.handle('spread', 'dec', async (id, ev, meta) => {
    const by: number = ev.by
    return [id, by, meta.position]
  })
  await h.runOnce()
  return n + (await cmd.drop('s1', { by: 2 })).count
}
