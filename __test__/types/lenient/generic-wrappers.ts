// Helpers an application builds around evtstore: generic wrappers, aliases of
// its types, handlers registered from tables, providers chosen at run time.
import {
  createAggregate,
  createProvidedAggregate,
  createPersistedAggregate,
  createCommands,
  createDomain,
  Aggregate,
  Event,
  Command,
  Fold,
  CommandHandler,
  ProvidedAggregate,
  StorableAggregate,
  Provider,
  HandlerBody,
  StoreEvent,
  HandlerOptions,
  DomainHandlerOpts,
  CmdBody,
} from 'evtstore'
import { createProvider } from 'evtstore/provider/memory'

export function defineAggregate<E extends Event, A extends Aggregate, S extends string>(
  stream: S,
  create: () => A,
  fold: Fold<E, A>
): StorableAggregate<E, A, S> {
  return createAggregate<E, A, S>({ stream, create, fold })
}

export function commandsFor<E extends Event, A extends Aggregate, C extends Command>(
  agg: ProvidedAggregate<E, A>,
  handlers: CommandHandler<E, A, C>
): CmdBody<C, A> {
  return createCommands<E, A, C>(agg, handlers)
}

type Evt = { type: 'set'; value: number } | { type: 'cleared' }
type Agg = { value: number }

const fold: Fold<Evt, Agg> = (ev) => (ev.type === 'set' ? { value: ev.value } : { value: 0 })
export const register = defineAggregate('registers', () => ({ value: 0 }), fold)

export function pickProvider(kind: string): Provider<Evt> | Promise<Provider<Evt>> {
  const initial: Array<StoreEvent<Evt>> = []
  return kind === 'memory' ? createProvider<Evt>(initial) : Promise.resolve(createProvider<Evt>())
}

const provided = createProvidedAggregate<Evt, Agg>({
  stream: 'registers',
  aggregate: () => ({ value: 0 }),
  fold,
  provider: pickProvider('memory'),
  useCache: true,
})
export const persisted = createPersistedAggregate<Evt, Agg>({
  stream: 'registers',
  aggregate: () => ({ value: 0 }),
  fold,
  provider: pickProvider('other'),
  version: '2',
  persistAggregate: true,
})

export const cmds = commandsFor<Evt, Agg, { type: 'set'; value: number } | { type: 'clear' }>(provided, {
  async set(cmd) {
    return { type: 'set', value: cmd.value }
  },
  async clear() {
    return { type: 'cleared' }
  },
})

const { createHandler } = createDomain({ provider: pickProvider('memory') }, { register })

// handlers registered from a table
const table: HandlerBody<Evt> = {
  set: async (id, ev) => console.log(id, ev.value),
  cleared: async (id, _ev, meta) => console.log(id, meta.position),
}
const options: HandlerOptions = { continueOnError: true }
const more: DomainHandlerOpts = { ...options, tailStream: true }
export const model = createHandler('registers-model', ['registers'], more)
model.handle('registers', 'set', table.set!)
for (const type of ['set', 'cleared'] as const) {
  model.handle('registers', type, async (id, ev) => console.log(id, ev.type))
}

export async function use() {
  const agg = await cmds.set('r1', { value: 3 })
  const next = provided.toNextAggregate(agg, {
    stream: 'registers',
    aggregateId: 'r1',
    version: agg.version + 1,
    position: 0,
    timestamp: new Date(),
    event: { type: 'cleared' },
  })
  return next.value + (await persisted.getAggregate('r1')).value
}
