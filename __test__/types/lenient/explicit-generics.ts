// Explicit event, aggregate and command types declared up front, as the
// evtstore README recommends, with the handlers typed through evtstore's
// exported types.
import {
  createAggregate,
  createDomainV2,
  createCommands,
  CommandError,
  CommandHandler,
  Fold,
  BaseAggregate,
  EventMeta,
} from 'evtstore'
import { createProvider } from 'evtstore/provider/memory'

type AccountEvt =
  | { type: 'opened'; owner: string }
  | { type: 'deposited'; amount: number }
  | { type: 'withdrawn'; amount: number }
  | { type: 'closed' }
type AccountAgg = { owner: string; balance: number; open: boolean }
type AccountCmd =
  | { type: 'open'; owner: string }
  | { type: 'deposit'; amount: number }
  | { type: 'withdraw'; amount: number }
  | { type: 'close' }

// a fold written on its own, typed with Fold
export const fold: Fold<AccountEvt, AccountAgg> = (ev, agg) => {
  switch (ev.type) {
    case 'opened':
      return { owner: ev.owner, open: true }
    case 'deposited':
      return { balance: agg.balance + ev.amount }
    case 'withdrawn':
      return { balance: agg.balance - ev.amount }
    case 'closed':
      return { open: false }
  }
}

export const account = createAggregate<AccountEvt, AccountAgg, 'accounts'>({
  stream: 'accounts',
  create: () => ({ owner: '', balance: 0, open: false }),
  fold,
  version: '1',
  persistAggregate: true,
})

// a fold that returns the whole previous aggregate, spread
export const audit = createAggregate<AccountEvt, { count: number }, 'audit'>({
  stream: 'audit',
  create: () => ({ count: 0 }),
  fold: (_ev, prev) => ({ ...prev, count: prev.count + 1 }),
})

export const { domain, createHandler } = createDomainV2({ provider: createProvider(), useCache: true }, { account, audit })

// command handlers declared apart from createCommands
const handlers: CommandHandler<AccountEvt, AccountAgg, AccountCmd> = {
  async open(cmd, agg) {
    if (agg.version) throw new CommandError('Account exists', 'EXISTS')
    return { type: 'opened', owner: cmd.owner }
  },
  async deposit(cmd) {
    return { type: 'deposited', amount: cmd.amount }
  },
  async withdraw(cmd, agg) {
    if (agg.balance < cmd.amount) throw new CommandError('Insufficient funds')
    return [{ type: 'withdrawn', amount: cmd.amount }]
  },
  async close(_cmd, agg) {
    if (!agg.open) return
    return { type: 'closed' }
  },
}

export const accountCmd = createCommands<AccountEvt, AccountAgg, AccountCmd>(domain.account, handlers)

// a function that takes any loaded account
export function describe(agg: AccountAgg & BaseAggregate): string {
  return `${agg.aggregateId}@${agg.version}: ${agg.balance}`
}

export async function run() {
  const next = await accountCmd.open('a1', { owner: 'ann' })
  const after = await accountCmd.deposit('a1', { amount: 5 })
  const model = createHandler('accounts-model', ['accounts'], { tailStream: true, continueOnError: true })
  model.handle('accounts', 'deposited', async (id: string, ev, meta: EventMeta) => {
    const amount: number = ev.amount
    return { id, amount, at: meta.timestamp.toISOString() }
  })
  model.handle('accounts', 'closed', (id) => console.log(id))
  await model.runOnce()
  return describe(next) + describe(after)
}
