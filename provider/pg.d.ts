// Not available yet in this version of evtstore-rs: every function fails with
// code NOT_SUPPORTED. The signatures are evtstore's, so code using them compiles.
import { Event, Provider, ErrorCallback } from '../index'

/** A node-postgres Pool. */
export type Pool = { query(...args: any[]): any; connect(...args: any[]): any }

/** A node-postgres Client. */
export type Client = { query(...args: any[]): any; connect(...args: any[]): any }

export type Bookmark = {
  bookmark: string
  position: number
}

export type MigrateOptions = {
  client: Pool
  events?: string
  bookmarks?: string
}

export type MigrateClientOptions = Omit<MigrateOptions, 'client'> & { client: Client }

export type Options = {
  limit?: number
  onError?: ErrorCallback
  client: Pool
  bookmarks: string
  events: string
}

/** Not available yet: throws an Error with code NOT_SUPPORTED. */
export declare function createProvider<E extends Event>(opts: Options): Provider<E>

/** Not available yet: rejects with code NOT_SUPPORTED. */
export declare function migrate(opts: MigrateOptions): Promise<void>

/** Not available yet: rejects with code NOT_SUPPORTED. */
export declare function migratePool(opts: MigrateOptions): Promise<void>

/** Not available yet: rejects with code NOT_SUPPORTED. */
export declare function migrateClient(opts: MigrateClientOptions): Promise<void>
