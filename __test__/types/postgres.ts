// The PostgreSQL providers' typings: evtstore's signatures (a postgres.js
// `sql`, a pg Pool or Client) and the url form, each giving a Provider that a
// domain accepts; a wrong option is a type error.
import { createAggregate, createDomainV2, createCommands, Provider } from 'evtstore'
import * as postgresProvider from 'evtstore/provider/postgres'
import * as pgProvider from 'evtstore/provider/pg'
import postgres = require('postgres')

type Ev = { type: 'counted'; by: number }
type Agg = { total: number }

const counter = createAggregate<Ev, Agg, 'counters'>({
  stream: 'counters',
  create: () => ({ total: 0 }),
  fold: (ev, agg) => ({ total: agg.total + ev.by }),
})

// a stand-in with the shape of a node-postgres Pool / Client (pg ships no typings)
declare const pool: { query(text: string): Promise<unknown>; connect(): Promise<unknown>; options: object }
declare const client: { query(text: string): Promise<unknown>; connect(): Promise<void> }

export async function withPostgres() {
  const url = 'postgres://evtstore:secret@127.0.0.1:5432/app'
  await postgresProvider.migrate({ url })
  const onUrl = postgresProvider.createProvider<Ev>({ url, limit: 100, maxConnections: 4 })

  const sql = postgres(url)
  await postgresProvider.migrate({ sql, events: 'events', bookmarks: 'bookmarks' })
  const onSql: Provider<Ev> = postgresProvider.createProvider<Ev>({
    sql,
    events: 'events',
    bookmarks: 'bookmarks',
    onError: (err) => console.error(err),
  })

  await pgProvider.migrate({ client: pool, events: 'events', bookmarks: 'bookmarks' })
  await pgProvider.migratePool({ client: pool, events: 'events', bookmarks: 'bookmarks' })
  await pgProvider.migrateClient({ client, events: 'events', bookmarks: 'bookmarks' })
  await pgProvider.migrate({ url })
  const onPool = pgProvider.createProvider<Ev>({ client: pool, events: 'events', bookmarks: 'bookmarks' })
  const onPgUrl = pgProvider.createProvider<Ev>({ url })

  for (const provider of [onUrl, onSql, onPool, onPgUrl]) {
    const { domain } = createDomainV2({ provider }, { counter })
    const cmd = createCommands<Ev, Agg, { type: 'count'; by: number }>(domain.counter, {
      async count(c) {
        return { type: 'counted', by: c.by }
      },
    })
    const after = await cmd.count('c1', { by: 2 })
    const total: number = after.total
    void total
  }
  await onUrl.ready
  await onUrl.close()
  await sql.end()
}

export function misuse() {
  const url = 'postgres://u@h/d'
  // @ts-expect-error a url or a driver object is needed
  postgresProvider.createProvider({ events: 'events', bookmarks: 'bookmarks' })
  // @ts-expect-error not both
  postgresProvider.createProvider({ url, sql: postgres(url) })
  // @ts-expect-error the pg provider takes `client`, not `sql`
  pgProvider.createProvider({ sql: postgres(url) })
  // @ts-expect-error limit is a number
  pgProvider.createProvider({ url, limit: '10' })
  // @ts-expect-error url is a string
  postgresProvider.migrate({ url: new URL(url) })
}
