// Type definitions for evtstore-rs: the evtstore 12 API with a Rust core.
// Hand-written: these types are the API.

// ---------------------------------------------------------------------------
// Shapes

/** An event: any object with a string `type`. */
export type Event = { type: string }

/** A command: any object with a string `type`. */
export type Command = { type: string }

/** An aggregate: any object. */
export type Aggregate = {}

/** What every loaded aggregate carries besides its own fields. */
export type BaseAggregate = {
  /** The number of events folded into it (0: no events yet). */
  version: number
  aggregateId: string
  /** The fold version of a persisted copy (see `persistAggregate`). */
  __pv?: string
}

/** Where and when an event was stored. */
export type EventMeta = {
  stream: string
  /** Store-wide, strictly increasing order of all events. */
  position: any
  /** 1 for the first event of an aggregate, then 2, 3, ... */
  version: number
  timestamp: Date
  aggregateId: string
}

/** An event as stored: its metadata and the event itself. */
export type StoreEvent<E = unknown, A = unknown> = EventMeta & { event: E & { __persisted?: A } }

/**
 * Folds one event into an aggregate: returns the fields that change, merged
 * over the previous aggregate (`version` and `aggregateId` are then set from
 * the stored event).
 */
export type Fold<E extends Event, A extends Aggregate> = (
  ev: E,
  agg: A & BaseAggregate,
  meta: EventMeta
) => Partial<A>

/** The member of the union `E` whose `type` is `T`. */
export type Ext<E extends Event, T extends E['type']> = E extends { type: T } ? E : never

// ---------------------------------------------------------------------------
// Providers and bookmarks

/** Called when a started handler fails: the error, its streams (joined by ', '), its bookmark and the event. */
export type ErrorCallback = (
  err: any,
  stream: string,
  bookmark: string,
  event?: Event & { [key: string]: any }
) => any

/**
 * Storage of events and bookmarks. Every built-in provider implements it, and
 * a provider of your own written against it works with every function here.
 */
export type Provider<Evt extends Event> = {
  driver: string
  onError: ErrorCallback
  /** The most events one read returns. */
  limit?: number
  getPosition(bookmark: string): Promise<any>
  setPosition(bookmark: string, position: any): Promise<void>
  getEventsFrom(stream: string | string[], position: any, limit?: number): Promise<Array<StoreEvent<Evt>>>
  getEventsFor(stream: string, aggregateId: string, fromPosition?: any): Promise<Array<StoreEvent<Evt>>>
  getLastEventFor(
    stream: string | string[],
    aggregateId?: string
  ): Promise<StoreEvent<Evt & { __persisted?: any }> | undefined>
  /** Builds StoreEvents (versions `version`, `version + 1`, ...) without storing them. */
  createEvents(stream: string, aggregateId: string, version: number, event: Evt[]): Array<StoreEvent<Evt>>
  /** Stores events atomically; rejects with `VersionError` when one of their versions exists. */
  append(
    stream: string,
    aggregateId: string,
    version: number,
    event: StoreEvent<Evt>[]
  ): Promise<Array<StoreEvent<Evt>>>
}

/**
 * A provider backed by the Rust core (memory, sqlite, knex): a `Provider` that
 * can also be awaited until its database is open and closed.
 */
export type NativeProvider<Evt extends Event = any> = Provider<Evt> & {
  /** Resolves when the store is open; rejects with the reason it could not be opened. */
  readonly ready: Promise<void>
  /** Releases the native store (a store shared by several providers closes with the last of them). */
  close(): Promise<void>
}

/** A bookmark as `provider.status()` shows it. */
export type BookmarkStatus = {
  name: string
  /** The position of the last event handled. */
  position: number
  /** Events of its streams after `position`; undefined until a coordinated handler ran on it (the streams are kept with the lease). */
  lag: number | undefined
  streams: string[] | undefined
  /** The instance holding the lease, `<host>:<pid>:<id>`; undefined when free or never leased. */
  owner: string | undefined
  /** The lease's fencing token: rises each time the lease changes hands. */
  token: number | undefined
  /** When the owner last renewed the lease (its clock). */
  renewedAt: Date | undefined
  /** `renewedAt` plus the lease length: past it a standby takes over. */
  expiresAt: Date | undefined
}

/**
 * A provider on a database (SQLite, PostgreSQL, MySQL/MariaDB, MongoDB,
 * Neo4j, through knex or not): handlers on it coordinate through leases
 * stored beside the bookmarks.
 */
export type StoreProvider<Evt extends Event = any> = NativeProvider<Evt> & {
  /** Every bookmark with its position, lag and lease: what `npx evtstore-rs status <url>` prints. */
  status(): Promise<BookmarkStatus[]>
}

/** A bookmark kept somewhere of your choosing (see `createBookmark`). */
export type ProviderBookmark = {
  readonly name: string
  getPosition(): Promise<any>
  setPosition(position: any): Promise<void>
}

/** A bookmark name stored by the provider, `MemoryBookmark`, or a `ProviderBookmark`. */
export type HandlerBookmark = string | ProviderBookmark

// ---------------------------------------------------------------------------
// Aggregates

/** An aggregate description, from `createAggregate`. */
export type StorableAggregate<E extends Event = any, A extends Aggregate = any, S extends string = string> = {
  stream: S
  fold: Fold<E, A>
  aggregate: () => A
  /** The fold version written into persisted copies of the aggregate. */
  version?: string
  /** Store a copy of the aggregate with every event (needs `version`). */
  persistAggregate?: boolean
}

/** Named aggregate descriptions, as given to `createDomain`. */
export type AggregateStore = { [key: string]: StorableAggregate }

/** An aggregate bound to a provider: `domain.<name>`. */
export type ProvidedAggregate<E extends Event, A extends Aggregate, S extends string = string> = {
  stream: S
  provider: Provider<E> | Promise<Provider<E>>
  /** Loads the aggregate: a new one (`version` 0) when it has no events. */
  getAggregate: (id: string) => Promise<A & BaseAggregate>
  /** The aggregate after one more stored event. */
  toNextAggregate: (prev: A & BaseAggregate, event: StoreEvent<E>) => A & BaseAggregate
  version?: string
  persistAggregate?: boolean
}

type AggregateOptions<E extends Event, A extends Aggregate, S extends string> = {
  /** The stream's name: give it as a literal so that handlers infer event types. */
  stream: S
  /** A new, empty aggregate. */
  create: () => A
  /**
   * The fields an event changes, merged over the aggregate. Checked as
   * evtstore checks it (`Partial<A>`): a key the aggregate does not have is
   * refused only when no returned key is one of its own.
   */
  fold: Fold<E, A>
  /** The fold version for persisted copies: change it whenever the fold changes. */
  version?: string
  /** Store a copy of the aggregate with every event (needs `version`). */
  persistAggregate?: boolean
}

type ProvidedOptions<E extends Event, A extends Aggregate> = StorableAggregate<E, A> & {
  provider: Provider<E> | Promise<Provider<E>>
  useCache?: boolean
  /**
   * With `useCache`: the most aggregates kept per aggregate type (a positive
   * integer); the least recently loaded one is dropped first and folded from
   * the store again when next loaded. Absent: no bound (every aggregate ever
   * loaded stays cached, as in evtstore).
   */
  cacheSize?: number
}

/**
 * Describes an aggregate. Give the event, aggregate and stream types, or let
 * them be inferred from `create` and `fold`.
 */
export declare function createAggregate<E extends Event, A extends Aggregate, S extends string>(
  opts: AggregateOptions<E, A, S>
): StorableAggregate<E, A, S>

/** An aggregate bound to a provider, loaded by folding its events. */
export declare function createProvidedAggregate<E extends Event, A extends Aggregate>(
  opts: ProvidedOptions<E, A>
): ProvidedAggregate<E, A>

/** An aggregate bound to a provider, loaded from the copy persisted with its last event when it is current. */
export declare function createPersistedAggregate<E extends Event, A extends Aggregate>(
  opts: ProvidedOptions<E, A>
): ProvidedAggregate<E, A>

// ---------------------------------------------------------------------------
// Commands

type ID = { aggregateId: string }

type OptCmd<C extends Command, T extends C['type']> = Omit<Ext<C, T>, 'type'> & { type: T }

type ExtCmd<C extends Command, T extends C['type']> = Omit<Ext<C, T>, 'type'>

/** Command handlers: each receives the command and the aggregate, and returns the events to append (or nothing). */
export type CommandHandler<E extends Event, A extends Aggregate, C extends Command> = {
  [key in C['type']]: (
    cmd: OptCmd<C, key> & ID,
    agg: A & BaseAggregate
  ) => Promise<E | E[] | void> | E | E[] | void
}

/** The callable commands: `(aggregateId, body) => the aggregate after the command`. */
export type CmdBody<C extends Command, A extends Aggregate> = {
  [cmd in C['type']]: (aggId: string, body: ExtCmd<C, cmd>) => Promise<A & BaseAggregate>
}

/** An aggregate with its commands bound (createDomainV1's `getAggregate`). */
export type ExecutableAggregate<C extends Command, A extends Aggregate> = {
  [cmd in C['type']]: (
    body: ExtCmd<C, cmd>
  ) => Promise<ExecutableAggregate<C, A> & { aggregate: Readonly<A & BaseAggregate> }>
}

/**
 * Commands for one aggregate of a domain. A call loads the aggregate, runs the
 * handler, appends the events it returns atomically and resolves with the
 * aggregate after them.
 */
export declare function createCommands<E extends Event, A extends Aggregate, C extends Command>(
  provided: ProvidedAggregate<E, A>,
  handler: CommandHandler<E, A, C>
): CmdBody<C, A>

// ---------------------------------------------------------------------------
// Event handlers

/** Called around each batch a handler reads. */
export type HandlerHooks = {
  preRun?: () => Promise<void> | void
  /** `events` read in the batch, of which `handled` had a callback. */
  postRun?: (events: number, handled: number) => Promise<void> | void
}

/** Options of every event handler. */
export type DomainHandlerOpts = {
  hooks?: HandlerHooks
  /** The first start with no stored position begins at the end of the stream(s) history. */
  tailStream?: boolean
  /** Every start (of a handler object that has no position yet) begins at the end of the stream(s) history. */
  alwaysTailStream?: boolean
  /** A callback that throws is reported to the provider's onError and the handler moves on. */
  continueOnError?: boolean
  /**
   * evtstore-rs: how often (ms) a started handler looks for events appended by
   * other processes. Appends in this process wake it at once. Default 1000.
   */
  pollInterval?: number
  /** evtstore-rs: the most events read per batch. Default: the provider's `limit`, else 1000. */
  batchSize?: number
  /**
   * evtstore-rs: how long (ms) a started handler waits before retrying after
   * a callback or hook threw, or a read or bookmark write failed with an error
   * that is not `retryable`. A `retryable` one (a database restarting) is
   * tried again at the next poll (`pollInterval`, or `retryDelay` if shorter).
   * Default 10000.
   */
  retryDelay?: number
  /**
   * evtstore-rs: with a stored bookmark on a database, one process at a
   * time handles events: the one holding the bookmark's lease; the others
   * stand by and take over when it stops or dies. false: every process
   * handles every event (as evtstore does). Default true.
   */
  coordinate?: boolean
  /**
   * evtstore-rs: the lease length in ms (at least 300). The holder renews
   * every third of it; a standby takes over a lease left unrenewed this
   * long (after a SIGKILL: measured 2.1 to 3.1 s with the default). Default 3000.
   */
  leaseMs?: number
  /**
   * evtstore-rs: splits the handler into this many partitions by a stable
   * hash of the aggregate id, each with its own bookmark (`<name>#<i>/<n>`)
   * and lease, shared out between the running instances. Each aggregate's
   * events stay in order; events of different aggregates do not. Default 1.
   */
  partitions?: number
  /** evtstore-rs: called when this instance becomes `active`, `standby` or `stopped` (per partition when partitioned). */
  onStateChange?: (state: HandlerState, handler: { name: string }) => any
}

/** `active`: handles events; `standby`: waits for the lease; `stopped`: not started. */
export type HandlerState = 'active' | 'standby' | 'stopped'

/** What `handler.status()` tells. */
export type HandlerStatus = {
  name: string
  state: HandlerState
  /** The position of the last event handled (a standby: the stored bookmark). */
  position: any
  /** Events of its streams after `position` (undefined on a provider not of this package). */
  lag: number | undefined
  /** This instance's id in the lease table, when coordinated. */
  owner: string | undefined
  /** Whether it takes turns with other instances through a lease. */
  coordinated: boolean
  /** Each partition's status, for `partitions` > 1. */
  partitions?: HandlerStatus[]
}

export type HandlerOptsV1 = DomainHandlerOpts
export type HandlerOptions = DomainHandlerOpts

/** `{ eventType: callback }` for the events of one stream. */
export type HandlerBody<E extends Event> = {
  [evt in E['type']]?: (id: string, evt: Ext<E, evt>, meta: EventMeta) => any
}

/** `handle(stream, type, callback)`, the event narrowed by stream and type. */
export type StreamsHandler<T extends { [key: string]: Event }> = <
  TStream extends keyof T,
  TType extends T[TStream]['type']
>(
  stream: TStream,
  type: TType,
  handler: (id: string, event: Ext<T[TStream], TType>, meta: EventMeta) => any
) => void

/** What every handler can do. */
type HandlerControls = {
  /** The bookmark's name. */
  name: string
  /** Begins handling events as they arrive (keeps Node alive until stop()). */
  start(): void
  /** Ends the loop; resolves when the callback in flight finished and the bookmark is stored. */
  stop(): Promise<void>
  /** Forgets the in-memory position: the stored bookmark is read again. */
  reset(): void
  /**
   * Handles every event not handled yet, started or not; resolves with the
   * number of events read, plus `runningCount` when given (as in evtstore).
   */
  runOnce(runningCount?: number): Promise<number>
  /** One catch-up pass of a started handler (failures go to the provider's onError); nothing when stopped. */
  run(): Promise<void>
  /** The current position, or where the handler will begin. */
  getPosition(): Promise<any>
  /** Sets the position (when given) and stores it in the bookmark. */
  setPosition(position?: any): Promise<void>
  /** evtstore-rs: `active`, `standby` or `stopped`. */
  readonly state: HandlerState
  /** evtstore-rs: state, position, lag and lease owner. */
  status(): Promise<HandlerStatus>
}

type SingleStreamCallbacks<E extends Event> = {
  handle: <T extends E['type']>(
    type: T,
    cb: (aggregateId: string, event: Ext<E, T>, meta: EventMeta) => any
  ) => void
  handlers: (body: HandlerBody<E>) => void
}

/**
 * A single-stream handler with the members evtstore's `Handler` type has, so
 * that objects of an application's own (test doubles) still fit: their
 * `stop()` may return nothing. The handlers createDomainV1 makes have every
 * method of `HandlerControls` (`stop()` returns a Promise there).
 */
export type Handler<E extends Event> = SingleStreamCallbacks<E> & {
  name: string
  start(): void
  stop(): void | Promise<void>
  reset(): void
  runOnce(runningCount?: number): Promise<number>
}

/** What createDomainV1's `handler()` returns. */
type DomainV1Handler<E extends Event> = HandlerControls & SingleStreamCallbacks<E>

// ---------------------------------------------------------------------------
// Domains

type DomainOpts = {
  provider: Provider<any> | Promise<Provider<any>>
  /** Keep each folded aggregate and read only newer events next time. */
  useCache?: boolean
  /**
   * With `useCache`: the most aggregates kept per aggregate type (a positive
   * integer); the least recently loaded one is dropped first and folded from
   * the store again when next loaded. Absent: no bound (every aggregate ever
   * loaded stays cached, as in evtstore).
   */
  cacheSize?: number
}

type StreamsOf<T extends AggregateStore> = T[keyof T]['stream']

type AggregateOfStream<T extends StorableAggregate, S extends string> = T extends StorableAggregate<any, any, S>
  ? T
  : never

type EventsOf<T> = T extends StorableAggregate<infer E, any, any> ? E : never

type StreamEvents<T extends AggregateStore> = {
  [K in StreamsOf<T>]: EventsOf<AggregateOfStream<T[keyof T], K>>
}

type ToProvided<T> = T extends StorableAggregate<infer E, infer A, infer S> ? ProvidedAggregate<E, A, S> : never

type DomainStore<T extends AggregateStore> = { [key in keyof T]: ToProvided<T[key]> }

/** A handler of a createDomain domain, on the streams `S`. */
type DomainEventHandler<T extends { [stream: string]: Event }, S extends keyof T> = HandlerControls & {
  handle: <Stream extends S, Type extends T[Stream]['type']>(
    stream: Stream,
    event: Type,
    callback: (id: string, event: Extract<T[Stream], { type: Type }>, meta: EventMeta) => any
  ) => void
}

type DomainV2<Tree extends AggregateStore> = {
  domain: DomainStore<Tree>
  createHandler: <S extends StreamsOf<Tree>[]>(
    bookmark: HandlerBookmark,
    streams: S,
    options?: DomainHandlerOpts
  ) => DomainEventHandler<StreamEvents<Tree>, S[number]>
}

/** A domain of several aggregates on one provider: `{ domain, createHandler }`. */
export declare function createDomainV2<Tree extends AggregateStore>(opts: DomainOpts, aggregates: Tree): DomainV2<Tree>

/** The same as createDomainV2. */
export declare function createDomain<Tree extends AggregateStore>(opts: DomainOpts, aggregates: Tree): DomainV2<Tree>

/** Options of createDomainV1. */
export type DomainOptions<E extends Event, A extends Aggregate> = {
  aggregate: () => A
  stream: string
  fold: Fold<E, A>
  provider: Provider<E> | Promise<Provider<E>>
  useCache?: boolean
  /**
   * With `useCache`: the most aggregates kept per aggregate type (a positive
   * integer); the least recently loaded one is dropped first and folded from
   * the store again when next loaded. Absent: no bound (every aggregate ever
   * loaded stays cached, as in evtstore).
   */
  cacheSize?: number
}

/** createDomainV1's domain: one aggregate, its commands and handlers. */
export type Domain<E extends Event, A extends Aggregate, C extends Command> = {
  handler(bookmark: HandlerBookmark, options?: DomainHandlerOpts): Handler<E>
  command: CmdBody<C, A>
  getAggregate(id: string): Promise<ExecutableAggregate<C, A> & { aggregate: Readonly<A & BaseAggregate> }>
  retry?: boolean
}

/** The `Domain` createDomainV1 returns: its `handler()` gives a handler with every method. */
type DomainV1<E extends Event, A extends Aggregate, C extends Command> = Omit<Domain<E, A, C>, 'handler'> & {
  handler(bookmark: HandlerBookmark, options?: DomainHandlerOpts): DomainV1Handler<E>
}

/** evtstore's first domain API. A command handler may not be named `aggregate`. */
export declare function createDomainV1<Evt extends Event, Agg extends Aggregate, Cmd extends Command>(
  opts: DomainOptions<Evt, Agg>,
  cmd: CommandHandler<Evt, Agg, Cmd>
): DomainV1<Evt, Agg, Cmd>

// ---------------------------------------------------------------------------
// Standalone handlers and bookmarks

type StandaloneHandlerOptions<Body extends { [key: string]: Event }> = {
  bookmark: HandlerBookmark
  streams: Array<keyof Body>
  provider: Provider<Event> | Promise<Provider<Event>>
} & DomainHandlerOpts

/** An event handler over the streams of `Body` (`{ stream: EventUnion }`) without a domain. */
export declare function createHandler<Body extends { [key: string]: Event }>(
  options: StandaloneHandlerOptions<Body>
): HandlerControls & {
  handle: StreamsHandler<Body>
  handleStream: <S extends keyof Body>(stream: S, handlers: HandlerBody<Body[S]>) => void
}

/** A `ProviderBookmark` stored by `provider` under `bookmark`. */
export declare function createBookmark<E extends Event>(provider: Provider<E>, bookmark: string): ProviderBookmark

/** A bookmark kept in memory only: the handler starts at the beginning each time it is created. */
export declare const MemoryBookmark = '@@MemoryBookmark'

// ---------------------------------------------------------------------------
// Errors

/** An error a command refuses with; `code` is an optional reason. */
export declare class CommandError extends Error {
  msg: string
  code?: string | undefined
  constructor(msg: string, code?: string | undefined)
}

/** Another writer appended to the aggregate first: nothing of this append was stored. Code `VERSION_CONFLICT`. */
export declare class VersionError extends CommandError {
  constructor(msg?: string)
}
