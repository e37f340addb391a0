// Every name SPEC.md lists under "Root exports" is exported by the package's
// typings (an import of a missing name is a compile error).
import {
  createAggregate,
  createDomainV2,
  createDomain,
  createDomainV1,
  createCommands,
  createHandler,
  createBookmark,
  createProvidedAggregate,
  createPersistedAggregate,
  MemoryBookmark,
  CommandError,
  VersionError,
} from 'evtstore'
import type {
  Domain,
  Provider,
  Event,
  Fold,
  Command,
  CommandHandler,
  Handler,
  CmdBody,
  EventMeta,
  StoreEvent,
  StreamsHandler,
  Aggregate,
  BaseAggregate,
  DomainHandlerOpts,
  DomainOptions,
  AggregateStore,
  ErrorCallback,
  HandlerBody,
  HandlerBookmark,
  HandlerHooks,
  ProvidedAggregate,
  StorableAggregate,
  ProviderBookmark,
  ExecutableAggregate,
  Ext,
  HandlerOptsV1,
  HandlerOptions,
} from 'evtstore'

export const functions = [
  createAggregate,
  createDomainV2,
  createDomain,
  createDomainV1,
  createCommands,
  createHandler,
  createBookmark,
  createProvidedAggregate,
  createPersistedAggregate,
]

export const memoryBookmark: '@@MemoryBookmark' = MemoryBookmark

const commandError: Error = new CommandError('message', 'CODE')
const msg: string = commandError instanceof CommandError ? commandError.msg : ''
const code: string | undefined = new CommandError('message').code
const versionError: CommandError = new VersionError()
const withDetail: CommandError = new VersionError('detail')
export const errors = { commandError, msg, code, versionError, withDetail }

type Ev = { type: 'a'; n: number } | { type: 'b' }
type Agg = { n: number }
type Cmd = { type: 'doA'; n: number }

export type AllTypes = [
  Domain<Ev, Agg, Cmd>,
  Provider<Ev>,
  Event,
  Fold<Ev, Agg>,
  Command,
  CommandHandler<Ev, Agg, Cmd>,
  Handler<Ev>,
  CmdBody<Cmd, Agg>,
  EventMeta,
  StoreEvent<Ev>,
  StreamsHandler<{ s: Ev }>,
  Aggregate,
  BaseAggregate,
  DomainHandlerOpts,
  DomainOptions<Ev, Agg>,
  AggregateStore,
  ErrorCallback,
  HandlerBody<Ev>,
  HandlerBookmark,
  HandlerHooks,
  ProvidedAggregate<Ev, Agg>,
  StorableAggregate<Ev, Agg, 's'>,
  ProviderBookmark,
  ExecutableAggregate<Cmd, Agg>,
  Ext<Ev, 'a'>,
  HandlerOptsV1,
  HandlerOptions
]

// the two handler option names are aliases of DomainHandlerOpts
const opts: DomainHandlerOpts = { tailStream: true }
export const aliases: [HandlerOptsV1, HandlerOptions] = [opts, opts]
