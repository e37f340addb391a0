// The TypeScript program of scripts/install-test.sh, compiled by tsc --strict
// in a project that installed the package under the drop-in name `evtstore`
// ("evtstore": "npm:evtstore-rs@<version>"): evtstore's typed API, on SQLite.
import { createAggregate, createDomainV2, createCommands, CommandError } from 'evtstore'
import { createProvider, migrate } from 'evtstore/provider/sqlite'

type Evt = { type: 'opened'; owner: string } | { type: 'deposited'; amount: number }
type Agg = { owner: string; balance: number }
type Cmd = { type: 'open'; owner: string } | { type: 'deposit'; amount: number }

const account = createAggregate<Evt, Agg, 'accounts'>({
  stream: 'accounts',
  create: () => ({ owner: '', balance: 0 }),
  fold: (evt, agg) => (evt.type === 'opened' ? { owner: evt.owner } : { balance: agg.balance + evt.amount }),
})

async function main() {
  await migrate({ file: 'ts.sqlite' })
  const provider = createProvider<Evt>({ file: 'ts.sqlite' })
  const { domain, createHandler } = createDomainV2({ provider }, { account })
  const cmd = createCommands<Evt, Agg, Cmd>(domain.account, {
    async open(c, agg) {
      if (agg.version) throw new CommandError('already open')
      return { type: 'opened', owner: c.owner }
    },
    async deposit(c) {
      return { type: 'deposited', amount: c.amount }
    },
  })
  const handler = createHandler('ts-install-test', ['accounts'])
  let total = 0
  handler.handle('accounts', 'deposited', async (_id, evt) => {
    total += evt.amount
  })
  await cmd.open('a1', { owner: 'ada' })
  const after = await cmd.deposit('a1', { amount: 42 })
  await handler.runOnce()
  await provider.close()
  if (after.balance !== 42 || total !== 42) throw new Error(`unexpected ${after.balance} ${total}`)
  console.log('typescript program on SQLite (evtstore alias): ok')
}
// an unhandled rejection ends node with a non-zero exit code
void main()
