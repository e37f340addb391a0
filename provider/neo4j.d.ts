// evtstore's provider/neo4j, run by the Rust core over its own Bolt
// connections: Neo4j 3.5, 4.4 and 5.x. Same signatures as evtstore's, plus
// the native form { url, user, password, database? }.
import { ErrorCallback, Event, StoreProvider } from '../index'

/**
 * A neo4j-driver Driver (4.4 to 6). evtstore-rs only reads which server it
 * connects to and its basic-auth login; neo4j-driver is never loaded by it.
 */
export type Driver = { session(...args: any[]): any; close(): any }

export type Bookmark = {
  bookmark: string
  /** Our positions are integers; evtstore wrote ISO text (read as epoch ms). */
  position: number | string
}

export type Labels = {
  /** Bookmarks label. Default 'bookmarks'. */
  bookmarks?: string
  /** Events label. Default 'events'. */
  events?: string
}

/** The server through a neo4j-driver Driver, as in evtstore. */
export type ClientLocation = {
  client: Driver | Promise<Driver>
  url?: undefined
  /** The database (Neo4j 4 and later); the server's default when absent. */
  database?: string
  /** Connections of the native pool (default 10). */
  maxConnections?: number
}

/** The server as a URL, with no JavaScript driver at all. */
export type UrlLocation = {
  /** bolt://host:7687 (or neo4j://; the one server is used directly). */
  url: string
  client?: undefined
  user?: string
  password?: string
  /** The database (Neo4j 4 and later); the server's default when absent. */
  database?: string
  /** Connections of the native pool (default 10). */
  maxConnections?: number
}

export type Options = (ClientLocation | UrlLocation) &
  Labels & {
    /** The most events one read returns. */
    limit?: number
    onError?: ErrorCallback
  }

export type MigrateOptions = (ClientLocation | UrlLocation) & Labels

/**
 * A provider on Neo4j, run by the Rust core. Providers on the same server,
 * database and labels share one native pool in the process.
 */
export declare function createProvider<E extends Event>(opts: Options): StoreProvider<E>

/**
 * Creates the uniqueness constraints, the indexes (in the syntax of the
 * server's version) and the position counter; idempotent, never drops.
 */
export declare function migrate(opts: MigrateOptions): Promise<void>

/** Runs a statement through the given Driver; nodes' properties are spread into each row. */
export declare function cypher<T = unknown>(client: Driver | Promise<Driver>, query: string, params?: {}): Promise<T[]>
