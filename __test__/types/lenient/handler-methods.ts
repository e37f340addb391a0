// Handler objects stored, passed around and called with the arguments
// evtstore's typings allow.
import { createAggregate, createDomain, createHandler as createStandalone, MemoryBookmark, createBookmark } from 'evtstore'
import { createProvider } from 'evtstore/provider/memory'

type PingEvt = { type: 'ping'; n: number } | { type: 'pong' }

const ping = createAggregate<PingEvt, { n: number }, 'pings'>({
  stream: 'pings',
  create: () => ({ n: 0 }),
  fold: (ev) => (ev.type === 'ping' ? { n: ev.n } : {}),
})

const provider = createProvider<PingEvt>()
const { createHandler } = createDomain({ provider }, { ping })

// a handler's type taken from the factory
export type PingModel = ReturnType<typeof createHandler>
export type Standalone = ReturnType<typeof createStandalone>

export function makeModel(): PingModel {
  const model = createHandler(createBookmark(provider, 'pings-model'), ['pings'], {
    hooks: {
      preRun: async () => {},
      postRun: async (events, handled) => {
        if (handled > events) throw new Error('impossible')
      },
    },
  })
  model.handle('pings', 'ping', async (_id, ev) => ev.n)
  return model
}

export async function drive(model: PingModel) {
  const read: number = await model.runOnce(1)
  const again = await model.runOnce()
  model.start()
  model.stop()
  model.reset()
  await model.run()
  const pos = await model.getPosition()
  await model.setPosition()
  const name: string = model.name
  return [read, again, pos, name]
}

// handlers kept in a list of "start/stop" services
type Service = { start: () => void; stop: () => void; name: string }
export const services: Service[] = [makeModel()]

export async function standalone() {
  const h = createStandalone<{ pings: PingEvt }>({
    bookmark: MemoryBookmark,
    streams: ['pings'],
    provider,
    alwaysTailStream: true,
  })
  h.handle('pings', 'pong', async (id, ev, meta) => [id, ev.type, meta.version])
  h.handleStream('pings', {
    ping: async (_id, ev) => ev.n,
  })
  const s: Standalone = h as Standalone
  await s.runOnce(0)
  s.start()
  s.stop()
  return s.getPosition()
}
