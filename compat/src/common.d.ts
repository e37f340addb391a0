import type { EventMeta, Provider, StoreEvent, Event } from '../../index'
export { MemoryBookmark } from '../../index'

/** The metadata of a stored event, as handlers receive it. */
export declare function toMeta(ev: StoreEvent<any>): EventMeta

/** Every stored event of one aggregate after `from` (all when absent). */
export declare function getAllEventsFor<E extends Event>(
  provider: Provider<any>,
  stream: string,
  id: string,
  from?: any
): Promise<StoreEvent<E, unknown>[]>
