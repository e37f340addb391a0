import { Event, ErrorCallback, StoreProvider } from '../index'

/**
 * A node-postgres (pg 8) Pool. evtstore-rs only reads where the database is
 * from it (`pool.options`): the events are stored through a native connection pool.
 */
export type Pool = { query(...args: any[]): any; connect(...args: any[]): any }

/** A node-postgres Client (never connected by evtstore-rs: only its settings are read). */
export type Client = { query(...args: any[]): any; connect(...args: any[]): any }

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
  client?: undefined
  /** Connections of the native pool (default: 10). */
  maxConnections?: number
}

/** The database of a pg Pool (or Client). */
export type ClientLocation<C = Pool> = {
  client: C
  url?: undefined
  /** Connections of the native pool (default: the Pool's `max`, else 10). */
  maxConnections?: number
}

export type MigrateOptions = (UrlLocation | ClientLocation<Pool | Client>) & Tables

export type MigrateClientOptions = (UrlLocation | ClientLocation<Client | Pool>) & Tables

export type Options = (UrlLocation | ClientLocation<Pool | Client>) &
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
 * `client` and neither table named, nothing is done (as in evtstore).
 */
export declare function migrate(opts: MigrateOptions): Promise<void>

/** `migrate`, named for a Pool (as in evtstore). */
export declare function migratePool(opts: MigrateOptions): Promise<void>

/** `migrate`, named for a Client (as in evtstore). */
export declare function migrateClient(opts: MigrateClientOptions): Promise<void>
