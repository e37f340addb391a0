'use strict'
// A small, correct Provider written in plain JavaScript against the Provider
// interface of SPEC.md, the way a user of evtstore writes their own. It is the
// reference the behaviour suite runs beside the native providers: every domain
// function must work with it, so it proves the facade only speaks the
// interface.
//
// Layout: one array of stored events in position order (position = index + 1),
// a Map from (stream, aggregateId) to that aggregate's events in version order,
// and a Map of bookmarks. Events are kept as JSON text, so a caller mutating an
// object it got back cannot change the store, and a value JSON cannot represent
// is refused before anything is stored.
const { root } = require('./pkg')

function toArray(stream) {
  return Array.isArray(stream) ? stream : [stream]
}

function createJsProvider({ limit, onError } = {}) {
  const { VersionError } = root()
  const all = []
  const byAggregate = new Map()
  const bookmarks = new Map()

  const keyOf = (stream, aggregateId) => `${stream}\u0000${aggregateId}`

  const out = (rec) => ({
    stream: rec.stream,
    aggregateId: rec.aggregateId,
    version: rec.version,
    position: rec.position,
    timestamp: new Date(rec.timestamp),
    event: JSON.parse(rec.json),
  })

  const capped = (list, lim) => (lim ? list.slice(0, lim) : list)

  const provider = {
    driver: 'js-reference',
    onError: onError || (() => {}),
    limit,

    async getPosition(bookmark) {
      return bookmarks.get(bookmark) ?? 0
    },

    async setPosition(bookmark, position) {
      bookmarks.set(bookmark, position)
    },

    async getEventsFrom(stream, position, lim) {
      const streams = new Set(toArray(stream))
      const max = lim ?? provider.limit
      const result = []
      // positions are dense: the first event after `position` is at index `position`
      for (let i = Math.max(0, Number(position) || 0); i < all.length; i++) {
        if (!streams.has(all[i].stream)) continue
        result.push(out(all[i]))
        if (max && result.length >= max) break
      }
      return result
    },

    async getEventsFor(stream, aggregateId, fromPosition) {
      const list = byAggregate.get(keyOf(stream, aggregateId)) || []
      const after =
        fromPosition === undefined ? list : list.filter((rec) => rec.position > fromPosition)
      return capped(after, provider.limit).map(out)
    },

    async getLastEventFor(stream, aggregateId) {
      const streams = toArray(stream)
      if (aggregateId !== undefined) {
        let last
        for (const s of streams) {
          const list = byAggregate.get(keyOf(s, aggregateId))
          const rec = list && list[list.length - 1]
          if (rec && (!last || rec.position > last.position)) last = rec
        }
        return last ? out(last) : undefined
      }
      const wanted = new Set(streams)
      for (let i = all.length - 1; i >= 0; i--) {
        if (wanted.has(all[i].stream)) return out(all[i])
      }
      return undefined
    },

    createEvents(stream, aggregateId, version, events) {
      return events.map((event, i) => ({
        stream,
        aggregateId,
        version: version + i,
        position: 0,
        timestamp: new Date(),
        event,
      }))
    },

    async append(stream, aggregateId, version, storeEvents) {
      const key = keyOf(stream, aggregateId)
      const list = byAggregate.get(key) || []
      if (version <= list.length) {
        throw new VersionError(`${stream}/${aggregateId} is already at version ${list.length}`)
      }
      if (version !== list.length + 1) {
        const err = new Error(
          `append at version ${version} would leave a gap: ${stream}/${aggregateId} is at version ${list.length}`
        )
        err.code = 'INVALID_ARGUMENT'
        throw err
      }

      // Build every record first (JSON.stringify may throw): all or nothing.
      const records = storeEvents.map((se, i) => {
        const event = se && typeof se === 'object' && 'event' in se ? se.event : se
        const ts = se && se.timestamp !== undefined ? new Date(se.timestamp).getTime() : Date.now()
        return {
          stream,
          aggregateId,
          version: version + i,
          position: 0,
          timestamp: Number.isFinite(ts) ? ts : Date.now(),
          json: JSON.stringify(event),
        }
      })

      for (const rec of records) {
        rec.position = all.length + 1
        all.push(rec)
        list.push(rec)
      }
      byAggregate.set(key, list)
      return records.map(out)
    },
  }

  return provider
}

module.exports = { createJsProvider }
