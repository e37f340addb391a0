import type { Knex as knex } from 'knex'
import { Event, ErrorCallback, NativeProvider } from '../index'

export type Bookmark = {
  bookmark: string
  position: number
}

export type MigrateOptions = {
  client: knex
  events?: string
  bookmarks?: string
}

export type Options = {
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
export declare function createProvider<E extends Event>(opts: Options): NativeProvider<E>

/** Creates the named tables when missing, in the knex client's SQLite database. */
export declare function migrate(opts: MigrateOptions): Promise<void>
