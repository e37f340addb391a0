import type { Event, StoreEvent } from '../index'

/** The stream list of a `stream | stream[]` argument. */
export declare function toArray(stream: string | string[]): string[]

/** Whether a stored bookmark position means "never ran" (0, nothing, or the MongoDB Timestamp zero). */
export declare function isPositionZero(position: any): boolean

/** Turns new events into StoreEvents at `position`, versions `version`, `version + 1`, ... */
export declare function createEventsMapper<E extends Event>(
  position: any
): (stream: string, aggregateId: string, version: number, event: E[]) => StoreEvent<E, unknown>[]
