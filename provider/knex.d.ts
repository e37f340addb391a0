import type { Knex as knex } from 'knex'
import { Event, ErrorCallback, StoreProvider } from '../index'
import type { Durability } from './sqlite'

export type Bookmark = {
  bookmark: string
  position: number
}

/** With an SQLite client: how the file is written, as provider/sqlite (durable by default). */
export type MigrateOptions = Durability & {
  client: knex
  events?: string
  bookmarks?: string
}

/** With an SQLite client, `synchronous` and `journalMode` say how the file is written, as provider/sqlite. */
export type Options = Durability & {
  limit?: number
  onError?: ErrorCallback
  bookmarks: () => knex.QueryBuilder<any, any>
  events: () => knex.QueryBuilder<any, any>
}

/**
 * evtstore's knex provider. With an SQLite knex client (sqlite3 or
 * better-sqlite3) the Rust core reads and writes the same file and tables;
 * other clients are not supported yet (code NOT_SUPPORTED).
 */
export declare function createProvider<E extends Event>(opts: Options): StoreProvider<E>

/** Creates the named tables when missing, in the knex client's SQLite database. */
export declare function migrate(opts: MigrateOptions): Promise<void>
