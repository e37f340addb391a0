import { Event, ErrorCallback, StoreProvider } from '../index'

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

export type Location = {
  /**
   * mysql://user:password@host:3306/database (or mariadb://); optional
   * ?ssl-mode=disabled|preferred|required|verify_ca|verify_identity,
   * ssl-ca / ssl-cert / ssl-key (PEM files), socket (a Unix socket path).
   */
  url: string
  /** Connections of the native pool (default: 10). */
  maxConnections?: number
}

export type MigrateOptions = Location & Tables

export type Options = Location &
  Tables & {
    /** The most events one read returns. */
    limit?: number
    onError?: ErrorCallback
  }

/**
 * A provider on MySQL 8.0.4+ or MariaDB 10.6+, run by the Rust core, on
 * evtstore's knex tables. Providers on the same database and tables share one
 * native pool in the process.
 */
export declare function createProvider<E extends Event>(opts: Options): StoreProvider<E>

/**
 * Creates the events and bookmarks tables and their unique indexes when
 * missing (never drops or rewrites anything; evtstore's tables are kept).
 */
export declare function migrate(opts: MigrateOptions): Promise<void>
