// Not available yet in this version of evtstore-rs: every function fails with
// code NOT_SUPPORTED. The signatures are evtstore's, so code using them compiles.
import { Event, StoreEvent, Provider, ErrorCallback } from '../index'

/** A MongoDB driver Collection. */
export type Collection<T = any> = { collectionName: string } & { [key: string]: any }

export type Bookmark = {
  bookmark: string
  /** A BSON Timestamp. */
  position: any
}

export type Options<E extends Event> = {
  limit?: number
  events: Collection<StoreEvent<E>> | Promise<Collection<StoreEvent<E>>>
  bookmarks: Collection<Bookmark> | Promise<Collection<Bookmark>>
  onError?: ErrorCallback
}

/** Not available yet: throws an Error with code NOT_SUPPORTED. */
export declare function createProvider<E extends Event>(opts: Options<E>): Provider<E>

/** Not available yet: rejects with code NOT_SUPPORTED. */
export declare function migrate(
  events: Collection<StoreEvent<any>> | Promise<Collection<StoreEvent<any>>>,
  bookmarks: Collection<Bookmark> | Promise<Collection<Bookmark>>
): Promise<void>
