// The provider entry points' typings: memory, sqlite and knex, used the way
// the README shows, each giving a Provider that a domain accepts.
import { createAggregate, createDomainV2, createCommands, Provider, StoreEvent } from 'evtstore'
import * as memory from 'evtstore/provider/memory'
import * as sqlite from 'evtstore/provider/sqlite'
import * as knexProvider from 'evtstore/provider/knex'
import { knex } from 'knex'

type Ev = { type: 'counted'; by: number }
type Agg = { total: number }

const counter = createAggregate<Ev, Agg, 'counters'>({
  stream: 'counters',
  create: () => ({ total: 0 }),
  fold: (ev, agg) => ({ total: agg.total + ev.by }),
})

export async function withProviders() {
  const initial: Array<StoreEvent<Ev>> = []
  const inMemory: Provider<Ev> = memory.createProvider<Ev>(initial, (err, stream, bookmark, event) => {
    console.error(err, stream, bookmark, event)
  })

  await sqlite.migrate({ file: 'events.sqlite', events: 'events', bookmarks: 'bookmarks' })
  const onFile = sqlite.createProvider<Ev>({ file: 'events.sqlite', limit: 100, onError: () => {} })
  const onMemoryDb = sqlite.createProvider<Ev>({ file: ':memory:' })

  const db = knex({ client: 'sqlite3', connection: { filename: 'events.sqlite' }, useNullAsDefault: true })
  await knexProvider.migrate({ client: db, events: 'events', bookmarks: 'bookmarks' })
  const viaKnex = knexProvider.createProvider<Ev>({
    events: () => db('events'),
    bookmarks: () => db('bookmarks'),
    limit: 100,
  })

  for (const provider of [inMemory, onFile, onMemoryDb, viaKnex]) {
    const { domain, createHandler } = createDomainV2({ provider }, { counter })
    const cmd = createCommands<Ev, Agg, { type: 'count'; by: number }>(domain.counter, {
      async count(c) {
        return { type: 'counted', by: c.by }
      },
    })
    const after = await cmd.count('c1', { by: 2 })
    const total: number = after.total
    const handler = createHandler('totals', ['counters'], { pollInterval: 50, batchSize: 10, retryDelay: 100 })
    handler.handle('counters', 'counted', async (_id, ev) => {
      const by: number = ev.by
      return by + total
    })
    handler.start()
    await handler.stop()
  }
}
