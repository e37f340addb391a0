// A provider of the application's own, written against the types and helpers
// of evtstore's deeper modules, and the handler class used directly.
import type { Provider, StoreEvent, Event, ErrorCallback, EventMeta } from 'evtstore/src/types'
import { toArray, isPositionZero, createEventsMapper } from 'evtstore/provider/util'
import { VersionError, CommandError } from 'evtstore/provider/error'
import { createAggregate } from 'evtstore/src/create-aggregate'
import { createDomainV2 } from 'evtstore/src/domain-v2'
import { createCommands } from 'evtstore/src/create-command'
import { EventHandler } from 'evtstore/src/event-handler'
import { toMeta, getAllEventsFor, MemoryBookmark } from 'evtstore/src/common'

export function arrayProvider<E extends Event>(onError: ErrorCallback = () => {}): Provider<E> {
  const events: Array<StoreEvent<E>> = []
  const bookmarks = new Map<string, number>()
  return {
    driver: 'array',
    onError,
    limit: 100,
    async getPosition(bookmark) {
      return bookmarks.get(bookmark) ?? 0
    },
    async setPosition(bookmark, position) {
      bookmarks.set(bookmark, position)
    },
    async getEventsFrom(stream, position, limit) {
      const streams = toArray(stream)
      const from = isPositionZero(position) ? 0 : position
      return events.filter((e) => streams.includes(e.stream) && e.position > from).slice(0, limit ?? 100)
    },
    async getEventsFor(stream, aggregateId, fromPosition) {
      return events.filter((e) => e.stream === stream && e.aggregateId === aggregateId && e.position > (fromPosition ?? 0))
    },
    async getLastEventFor(stream, aggregateId) {
      const streams = toArray(stream)
      return events.filter((e) => streams.includes(e.stream) && (!aggregateId || e.aggregateId === aggregateId)).pop()
    },
    createEvents(stream, aggregateId, version, newEvents) {
      return createEventsMapper<E>(events.length + 1)(stream, aggregateId, version, newEvents)
    },
    async append(stream, aggregateId, version, newEvents) {
      if (events.some((e) => e.stream === stream && e.aggregateId === aggregateId && e.version === version)) {
        throw new VersionError()
      }
      const stored = newEvents.map((e, i) => ({ ...e, position: events.length + 1 + i }))
      events.push(...stored)
      return stored
    },
  }
}

type NoteEvt = { type: 'written'; text: string }
const note = createAggregate<NoteEvt, { text: string }, 'notes'>({
  stream: 'notes',
  create: () => ({ text: '' }),
  fold: (ev) => ({ text: ev.text }),
})
const provider = arrayProvider<NoteEvt>()
const { domain } = createDomainV2({ provider }, { note })
export const noteCmd = createCommands<NoteEvt, { text: string }, { type: 'write'; text: string }>(domain.note, {
  async write(cmd) {
    if (!cmd.text) throw new CommandError('empty', 'EMPTY')
    return { type: 'written', text: cmd.text }
  },
})

export async function use() {
  const all = await getAllEventsFor<NoteEvt>(provider, 'notes', 'n1')
  const metas: EventMeta[] = all.map(toMeta)
  const handler = new EventHandler<NoteEvt>({ stream: 'notes', bookmark: MemoryBookmark, provider })
  const seen: unknown[] = []
  handler.handle('written', async (id, ev, meta) => {
    const text: string = ev.text
    seen.push([id, text, meta.position])
  })
  handler.handlers({ written: async () => {} })
  const n: number = await handler.runOnce()
  handler.start()
  handler.stop()
  return [metas, n]
}
