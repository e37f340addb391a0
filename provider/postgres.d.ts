// Not available yet in this version of evtstore-rs: every function fails with
// code NOT_SUPPORTED. The signatures are evtstore's, so code using them compiles.
import { Event, Provider, ErrorCallback } from '../index'

/** A postgres.js `sql` instance (postgres()). */
export type Sql<T = any> = ((...args: any[]) => any) & { options?: any }

export type Bookmark = {
  bookmark: string
  position: number
}

export type MigrateOptions = {
  sql: Sql<any>
  events?: string
  bookmarks?: string
}

export type MigrateClientOptions = Omit<MigrateOptions, 'client'> & { client: Sql<any> }

export type Options = {
  limit?: number
  onError?: ErrorCallback
  sql: Sql<any>
  bookmarks: string
  events: string
}

/** Not available yet: throws an Error with code NOT_SUPPORTED. */
export declare function createProvider<E extends Event>(opts: Options): Provider<E>

/** Not available yet: rejects with code NOT_SUPPORTED. */
export declare function migrate(opts: MigrateOptions): Promise<void>
