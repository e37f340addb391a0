// The knex and postgres.js providers as applications configure them.
import knex from 'knex'
import postgres from 'postgres'
import { createProvider as knexProvider, migrate as knexMigrate, Bookmark } from 'evtstore/provider/knex'
import { createProvider as postgresProvider, migrate as postgresMigrate } from 'evtstore/provider/postgres'
import { createDomain, createAggregate, Provider } from 'evtstore'

type Evt = { type: 'hit' }
const hits = createAggregate<Evt, { hits: number }, 'hits'>({
  stream: 'hits',
  create: () => ({ hits: 0 }),
  fold: (_ev, agg) => ({ hits: agg.hits + 1 }),
})

export async function withKnex() {
  const db = knex({ client: 'sqlite3', connection: { filename: 'events.db' }, useNullAsDefault: true })
  await knexMigrate({ client: db, events: 'events', bookmarks: 'bookmarks' })
  const provider: Provider<Evt> = knexProvider<Evt>({
    events: () => db('events'),
    bookmarks: () => db<Bookmark>('bookmarks'),
    limit: 500,
    onError: (err, stream, bookmark) => console.error(err, stream, bookmark),
  })
  return createDomain({ provider }, { hits })
}

export async function withPostgres() {
  const sql = postgres('postgres://localhost/app')
  await postgresMigrate({ sql, events: 'events', bookmarks: 'bookmarks' })
  const provider = postgresProvider<Evt>({ sql, events: 'events', bookmarks: 'bookmarks' })
  return createDomain({ provider: Promise.resolve(provider) }, { hits })
}
