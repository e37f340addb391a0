import { Event, StoreEvent, ErrorCallback, NativeProvider } from '../index'

/**
 * An in-memory provider backed by the Rust core.
 * @param initEvents StoreEvents to start with (stored in their order)
 * @param onError called when a started handler fails
 */
export declare function createProvider<E extends Event>(
  initEvents?: Array<StoreEvent<E>>,
  onError?: ErrorCallback
): NativeProvider<E>
