// Imports by package name, resolved through package.json "exports".
import { createAggregate, createDomainV2, createCommands, MemoryBookmark } from 'evtstore-rs'
import { createProvider as memoryProvider } from 'evtstore-rs/provider/memory'
import { createProvider as sqliteProvider, migrate } from 'evtstore-rs/provider/sqlite'
import { createProvider as knexProvider } from 'evtstore-rs/provider/knex'
import { createProvider as postgresProvider } from 'evtstore-rs/provider/postgres'
import { createProvider as pgProvider, migrateClient } from 'evtstore-rs/provider/pg'

type Ev = { type: 'counted' }
const counter = createAggregate<Ev, { n: number }, 'counters'>({
  stream: 'counters',
  create: () => ({ n: 0 }),
  fold: (_ev, agg) => ({ n: agg.n + 1 }),
})

export async function byName() {
  await migrate({ file: ':memory:' })
  const providers = [memoryProvider<Ev>(), sqliteProvider<Ev>({ file: ':memory:' })]
  for (const provider of providers) {
    const { domain, createHandler } = createDomainV2({ provider }, { counter })
    const cmd = createCommands<Ev, { n: number }, { type: 'count' }>(domain.counter, {
      async count() {
        return { type: 'counted' }
      },
    })
    const agg = await cmd.count('c', {})
    const n: number = agg.n
    const handler = createHandler(MemoryBookmark, ['counters'])
    // @ts-expect-error not a stream of this domain
    createHandler('x', ['nope'])
    await handler.runOnce()
    return n
  }
  return typeof knexProvider
}

export async function postgresByName(url: string) {
  await migrateClient({ url })
  return [postgresProvider<Ev>({ url }), pgProvider<Ev>({ url, maxConnections: 2 })]
}
