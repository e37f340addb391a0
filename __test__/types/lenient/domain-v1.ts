// The first domain API (createDomainV1), still used by older applications.
import { createDomainV1, Domain, Handler, ExecutableAggregate } from 'evtstore'
import { createProvider } from 'evtstore/provider/memory'

type Evt = { type: 'named'; name: string } | { type: 'cleared' }
type Agg = { name: string }
type Cmd = { type: 'setName'; name: string } | { type: 'clear' }

export const userDomain: Domain<Evt, Agg, Cmd> = createDomainV1<Evt, Agg, Cmd>(
  {
    aggregate: () => ({ name: '' }),
    stream: 'users',
    fold: (ev) => (ev.type === 'named' ? { name: ev.name } : { name: '' }),
    provider: createProvider<Evt>(),
    useCache: false,
  },
  {
    async setName(cmd) {
      return { type: 'named', name: cmd.name }
    },
    async clear(_cmd, agg) {
      if (!agg.name) return
      return { type: 'cleared' }
    },
  }
)

export async function use() {
  const agg = await userDomain.command.setName('u1', { name: 'x' })
  const exec = await userDomain.getAggregate('u1')
  const after: ExecutableAggregate<Cmd, Agg> = await exec.clear({})
  const name: string = exec.aggregate.name
  const handler: Handler<Evt> = userDomain.handler('users-model')
  handler.handle('named', async (id, ev) => {
    const n: string = ev.name
    return [id, n]
  })
  handler.handlers({ cleared: async () => {} })
  await handler.runOnce()
  handler.start()
  handler.stop()
  handler.reset()
  return [agg.version, name, after]
}
