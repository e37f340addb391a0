// Not available yet in this version of evtstore-rs: every function fails with
// code NOT_SUPPORTED. The signatures are evtstore's, so code using them compiles.
import { ErrorCallback, Event, Provider } from '../index'

/** A neo4j-driver Driver. */
export type Driver = { session(...args: any[]): any; close(): any }

export type Bookmark = {
  bookmark: string
  /** datetime.realtime() */
  position: string
}

export type Options = {
  limit?: number
  client: Driver | Promise<Driver>
  onError?: ErrorCallback
  /** Bookmarks label */
  bookmarks: string
  /** Events label */
  events: string
}

export type MigrateOptions = {
  client: Driver | Promise<Driver>
  bookmarks: string
  events: string
}

/** Not available yet: throws an Error with code NOT_SUPPORTED. */
export declare function createProvider<E extends Event>(opts: Options): Provider<E>

/** Not available yet: rejects with code NOT_SUPPORTED. */
export declare function migrate(opts: MigrateOptions): Promise<void>

/** Not available yet: rejects with code NOT_SUPPORTED. */
export declare function cypher<T = unknown>(client: Driver | Promise<Driver>, query: string, params?: {}): Promise<T[]>
