import type {
  Event,
  Provider,
  Ext,
  Handler,
  EventMeta,
  HandlerBookmark,
  HandlerBody,
  HandlerHooks,
  DomainHandlerOpts,
} from '../../index'

type Options<E extends Event> = {
  stream: string | string[]
  bookmark: HandlerBookmark
  provider: Provider<E> | Promise<Provider<E>>
  hooks?: HandlerHooks
} & DomainHandlerOpts

/** evtstore's EventHandler: a handler of one or more streams, callbacks keyed by event type. */
export declare class EventHandler<E extends Event> implements Handler<E> {
  name: string
  constructor(opts: Options<E>)
  handle: <T extends E['type']>(type: T, cb: (aggregateId: string, event: Ext<E, T>, meta: EventMeta) => any) => void
  handlers: (body: HandlerBody<E>) => void
  start: () => void
  /** Resolves when the callback in flight finished and the bookmark is stored. */
  stop: () => Promise<void>
  reset: () => void
  runOnce: (runningCount?: number) => Promise<number>
  getPosition: () => Promise<any>
  setPosition: (position?: any) => Promise<void>
  run: () => Promise<void>
}

export {}
