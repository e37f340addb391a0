'use strict'

/**
 * What `provider.status()` and `npx evtstore-rs status <url>` show: every
 * bookmark with its position, its lag and its lease.
 *
 * @typedef {object} BookmarkStatus
 * @property {string} name
 * @property {number} position the position of the last event handled
 * @property {number | undefined} lag events of its streams after the position (known once a coordinated handler ran on it)
 * @property {string[] | undefined} streams
 * @property {string | undefined} owner the instance holding the lease: "<host>:<pid>:<id>"; undefined when free or never leased
 * @property {number | undefined} token the lease's fencing token
 * @property {Date | undefined} renewedAt when the owner last renewed the lease (its clock)
 * @property {Date | undefined} expiresAt renewedAt + the lease length: past it, a standby takes over
 */

/** Member slots of partitioned handlers are how instances count each other, not bookmarks. */
const isMemberSlot = (/** @type {string} */ name) => /#member\/\d+$/.test(name)

/**
 * @param {import('./native').Store} store
 * @returns {Promise<BookmarkStatus[]>}
 */
async function statusOf(store) {
  const [bookmarks, leases] = await Promise.all([store.bookmarks(), store.leases()])
  const positions = new Map(bookmarks.map((b) => [b.name, b.position]))
  const leaseOf = new Map(leases.filter((l) => !isMemberSlot(l.name)).map((l) => [l.name, l]))
  const names = [...new Set([...positions.keys(), ...leaseOf.keys()])].sort()
  return Promise.all(
    names.map(async (name) => {
      const position = positions.get(name) || 0
      const lease = leaseOf.get(name)
      const streams = lease ? JSON.parse(lease.streams) : undefined
      const lag = streams && streams.length > 0 ? await store.countAfter(streams, position) : undefined
      const held = lease && lease.owner !== ''
      return {
        name,
        position,
        lag,
        streams,
        owner: held ? lease.owner : undefined,
        token: lease ? lease.token : undefined,
        renewedAt: held ? new Date(lease.renewedAt) : undefined,
        expiresAt: held ? new Date(lease.renewedAt + lease.ttlMs) : undefined,
      }
    })
  )
}

/**
 * The rows as a text table, for people at a terminal.
 * @param {BookmarkStatus[]} rows
 * @param {number} [now]
 */
function formatStatus(rows, now = Date.now()) {
  if (rows.length === 0) return 'no bookmarks stored yet\n'
  const header = ['bookmark', 'position', 'lag', 'owner', 'token', 'lease']
  const lines = rows.map((r) => [
    r.name,
    String(r.position),
    r.lag === undefined ? '?' : String(r.lag),
    r.owner || (r.token ? '(free)' : '-'),
    r.token === undefined ? '-' : String(r.token),
    r.expiresAt ? expiry(r.expiresAt.getTime() - now) : '-',
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const row = (/** @type {string[]} */ cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()
  return [row(header), ...lines.map(row)].join('\n') + '\n'
}

/** @param {number} ms */
function expiry(ms) {
  return ms >= 0 ? `expires in ${(ms / 1000).toFixed(1)} s` : `expired ${(-ms / 1000).toFixed(1)} s ago`
}

module.exports = { statusOf, formatStatus }
