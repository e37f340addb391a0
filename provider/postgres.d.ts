import { Event, ErrorCallback, StoreProvider } from '../index'

/**
 * A postgres.js `sql` instance (`postgres(...)`, version 3). evtstore-rs only
 * reads where the database is from it (`sql.options`): the events are stored
 * through a native connection pool.
 */
export type Sql<T = any> = ((...args: any[]) => any) & { options?: any }

export type Bookmark = {
  bookmark: string
  position: number
}

export type Tables = {
  /** The events table. Default 'events'. */
  events?: string
  /** The bookmarks table. Default 'bookmarks'. */
  bookmarks?: string
}

/** The database as a URL, with no JavaScript driver at all. */
export type UrlLocation = {
  /** postgres://user:password@host:5432/database?sslmode=require (or postgresql://) */
  url: string
  sql?: undefined
  /** Connections of the native pool (default: 10). */
  maxConnections?: number
}

/** The database of a postgres.js instance. */
export type SqlLocation = {
  sql: Sql<any>
  url?: undefined
  /** Connections of the native pool (default: the instance's `max`). */
  maxConnections?: number
}

export type MigrateOptions = (UrlLocation | SqlLocation) & Tables

export type MigrateClientOptions = Tables & { client: Sql<any> }

export type Options = (UrlLocation | SqlLocation) &
  Tables & {
    /** The most events one read returns. */
    limit?: number
    onError?: ErrorCallback
  }

/**
 * A provider on PostgreSQL, run by the Rust core. Providers on the same
 * database and tables share one native pool in the process.
 */
export declare function createProvider<E extends Event>(opts: Options): StoreProvider<E>

/**
 * Creates the events and bookmarks tables and their indexes when missing
 * (never drops anything; evtstore's own tables are kept as they are). With
 * `sql` and neither table named, nothing is done (as in evtstore).
 */
export declare function migrate(opts: MigrateOptions): Promise<void>
