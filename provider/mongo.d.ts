import { Event, StoreEvent, ErrorCallback, StoreProvider } from '../index'

/**
 * A Collection of the official `mongodb` driver (4.x to 6.x). evtstore-rs only
 * reads where it is from it (its client's connection string, database and
 * collection names): the events are stored through a native connection pool.
 */
export type Collection<T = any> = { collectionName: string; dbName?: string } & { [key: string]: any }

export type Bookmark = {
  bookmark: string
  /** An integer (evtstore stored a BSON Timestamp: migrate converts it). */
  position: number
}

type Common = {
  /** The most events one read returns. */
  limit?: number
  onError?: ErrorCallback
  /**
   * How long (ms) a handler holds back at positions a writer took but has not
   * finished inserting, before treating them as abandoned (the writer died).
   * Default 5000.
   */
  abandonAfterMs?: number
}

/** evtstore's form: the two Collections, or Promises of them. */
export type Options<E extends Event> = Common & {
  events: Collection<StoreEvent<E>> | Promise<Collection<StoreEvent<E>>>
  bookmarks: Collection<Bookmark> | Promise<Collection<Bookmark>>
  url?: undefined
}

/** Native-first: the server as a URL, no JavaScript driver at all. */
export type UrlOptions = Common & UrlLocation

export type UrlLocation = {
  /** mongodb://user:password@host:27017/database?replicaSet=rs0 (or mongodb+srv://) */
  url: string
  /** The database, when the url names none (or another one). */
  database?: string
  /** The events collection. Default 'events'. */
  events?: string
  /** The bookmarks collection. Default 'bookmarks'. */
  bookmarks?: string
}

/**
 * A provider on MongoDB (or a server speaking its protocol), run by the Rust
 * core. Providers on the same database and collections share one native
 * client in the process.
 */
export declare function createProvider<E extends Event>(opts: Options<E> | UrlOptions): StoreProvider<E>

/**
 * Creates the indexes, turns evtstore's BSON Timestamp positions (events and
 * bookmarks) into integers once, in order, and creates the position counter.
 * Idempotent; never drops anything.
 */
export declare function migrate(
  events: Collection<StoreEvent<any>> | Promise<Collection<StoreEvent<any>>>,
  bookmarks: Collection<Bookmark> | Promise<Collection<Bookmark>>
): Promise<void>
export declare function migrate(opts: UrlLocation): Promise<void>
