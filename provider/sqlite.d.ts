import { Event, ErrorCallback, NativeProvider } from '../index'

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

export type Options = Location &
  Tables & {
    /** The most events one read returns. */
    limit?: number
    onError?: ErrorCallback
  }

export type MigrateOptions = Location & Tables

/**
 * A provider on an SQLite database, run by the Rust core. Create the tables
 * first with `migrate` (':memory:' databases get them at once).
 */
export declare function createProvider<E extends Event>(opts: Options): NativeProvider<E>

/** Creates the events and bookmarks tables when they are missing (never drops anything). */
export declare function migrate(opts: MigrateOptions): Promise<void>
