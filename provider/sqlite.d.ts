import { Event, ErrorCallback, StoreProvider } from '../index'

/** The database: a file name (or ':memory:'), or an sqlite: URL. */
export type Location =
  | {
      /** A database file (created when missing), or ':memory:' for a private in-memory database. */
      file: string
      url?: undefined
    }
  | {
      /** sqlite:///absolute/path.db, sqlite://relative/path.db or sqlite::memory: */
      url: string
      file?: undefined
    }

export type Tables = {
  /** The events table. Default 'events'. */
  events?: string
  /** The bookmarks table. Default 'bookmarks'. */
  bookmarks?: string
}

/** How a database file is written (not for ':memory:'). */
export type Durability = {
  /**
   * 'full' (default): an append or bookmark write resolves only once SQLite
   * synced it to disk. 'normal': faster; appends that resolved may be lost on
   * a power cut or OS crash, never on a crash of the process.
   */
  synchronous?: 'full' | 'normal'
  /**
   * 'wal' (default; it stays with the file, and a file on a network share is
   * not safe in WAL mode) or 'delete' (SQLite's rollback journal).
   */
  journalMode?: 'wal' | 'delete'
}

export type Options = Location &
  Tables &
  Durability & {
    /** The most events one read returns. */
    limit?: number
    onError?: ErrorCallback
  }

export type MigrateOptions = Location & Tables & Durability

/**
 * A provider on an SQLite database, run by the Rust core. Create the tables
 * first with `migrate` (':memory:' databases get them at once).
 */
export declare function createProvider<E extends Event>(opts: Options): StoreProvider<E>

/** Creates the events and bookmarks tables when they are missing (never drops anything). */
export declare function migrate(opts: MigrateOptions): Promise<void>
