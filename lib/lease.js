'use strict'

const os = require('os')
const crypto = require('crypto')
const { performance } = require('perf_hooks')

/**
 * Handler leases: among the processes running one handler on one stored
 * bookmark, one holds the bookmark's lease and handles events, the others
 * stand by (see src/store/lease.rs for what the store keeps).
 *
 * A standby takes a lease when it is free (released, or never taken), or
 * when it has seen the same (token, beat) for a whole lease length on its
 * own monotonic clock: no clocks are compared between machines. The holder
 * renews every third of the lease and counts itself active only until 80%
 * of a lease length after it sent its last successful renewal, which is
 * before any standby can have seen that renewal go stale.
 *
 * One coordinator runs the leases of one handler: a single lease, or, for
 * `partitions: N`, N partition leases plus member slots that tell the
 * instances how many they are, so that each holds its share.
 */

const DEFAULT_LEASE_MS = 3000
/** how long the holder counts itself active after sending a renewal, in lease lengths */
const VALID_FOR = 0.8

/** Who this instance is, as the lease table and status() show it. */
function newOwner() {
  return `${os.hostname()}:${process.pid}:${crypto.randomBytes(3).toString('hex')}`
}

/**
 * @typedef {{ name: string, owner: string, token: number, beat: number, renewedAt: number, ttlMs: number, streams: string }} StoredLease
 * @typedef {'active' | 'standby' | 'stopped'} LeaseState
 *
 * One lease this instance campaigns for.
 * @typedef {object} Slot
 * @property {string} name the lease's (and bookmark's) name
 * @property {number} token 0 while not held
 * @property {number} validUntil monotonic ms
 * @property {number} renewedAt monotonic ms when the last renewal was sent
 * @property {boolean} handingOver stop handling; release once the handler let go
 * @property {(state: LeaseState) => void} onChange
 * @property {() => Promise<void>} [drained] resolves when the handler has no batch in flight
 */

/**
 * A slot not held yet.
 * @param {string} name
 * @param {(state: LeaseState) => void} onChange
 * @param {() => Promise<void>} [drained]
 * @returns {Slot}
 */
function newSlot(name, onChange, drained) {
  return { name, token: 0, validUntil: 0, renewedAt: 0, handingOver: false, onChange, drained }
}

/**
 * @param {object} opts
 * @param {Promise<any>} opts.store the native store
 * @param {string} opts.name the handler's bookmark
 * @param {string[]} opts.streams
 * @param {number} opts.leaseMs
 * @param {number} opts.partitions 1: one lease named as the bookmark
 * @param {(err: any) => void} opts.report
 */
function createCoordinator(opts) {
  const { name, leaseMs, partitions } = opts
  const owner = newOwner()
  const streamsJson = JSON.stringify(opts.streams)
  /** @type {Map<string, { token: number, beat: number, at: number }>} what each lease looked like, since when */
  const observed = new Map()
  /** @type {Slot[]} */
  const slots = []
  /** the member slot this instance holds (partitioned handlers only) */
  /** @type {Slot | undefined} */
  let member
  /** @type {NodeJS.Timeout | undefined} */
  let timer
  let running = false
  /** @type {Promise<void>} */
  let ticking = Promise.resolve()
  let lastRelease = 0

  const memberName = (/** @type {number} */ i) => `${name}#member/${i}`

  /**
   * @param {string} leaseName
   * @param {(state: LeaseState) => void} onChange
   * @param {() => Promise<void>} [drained]
   */
  function slot(leaseName, onChange, drained) {
    const s = newSlot(leaseName, onChange, drained)
    slots.push(s)
    return s
  }

  /** @param {Slot} s */
  const holds = (s) => s.token > 0 && !s.handingOver && performance.now() < s.validUntil

  /**
   * Whether a lease may be taken now: free, or unchanged for a whole lease
   * length (its holder's or ours, whichever is longer).
   * @param {StoredLease | undefined} lease
   */
  function takeable(lease) {
    if (!lease || lease.owner === '') return true
    const seen = observed.get(lease.name)
    return !!seen && performance.now() - seen.at >= Math.max(lease.ttlMs, leaseMs)
  }

  /** @param {StoredLease[]} leases */
  function observe(leases) {
    const now = performance.now()
    for (const l of leases) {
      const seen = observed.get(l.name)
      if (!seen || seen.token !== l.token || seen.beat !== l.beat) observed.set(l.name, { token: l.token, beat: l.beat, at: now })
    }
  }

  /**
   * @param {Slot} s
   * @param {StoredLease | undefined} lease
   */
  async function claim(s, lease) {
    const store = await opts.store
    const sent = performance.now()
    const token = await store.claimLease(s.name, owner, lease ? lease.token : null, lease ? lease.beat : null, leaseMs, streamsJson)
    if (token === null) return
    s.token = token
    s.renewedAt = sent
    s.validUntil = sent + leaseMs * VALID_FOR
    s.onChange('active')
  }

  /** @param {Slot} s */
  async function renew(s) {
    const store = await opts.store
    const sent = performance.now()
    if (await store.renewLease(s.name, s.token)) {
      // validUntil 0: a lease adopted (see adopt()), active from now on
      const adopted = s.validUntil === 0
      s.renewedAt = sent
      s.validUntil = sent + leaseMs * VALID_FOR
      if (adopted) s.onChange('active')
    } else {
      lose(s)
    }
  }

  /** @param {Slot} s the handler found out it no longer holds the lease */
  function lose(s) {
    if (s.token === 0) return
    s.token = 0
    s.validUntil = 0
    s.onChange('standby')
  }

  /** @param {Slot} s */
  async function release(s) {
    s.handingOver = true
    try {
      if (s.drained) await s.drained()
      const token = s.token
      if (token > 0) {
        s.token = 0
        s.onChange('standby')
        await (await opts.store).releaseLease(s.name, token)
      }
    } finally {
      s.handingOver = false
    }
  }

  /**
   * The slot's lease as stored; adopts it when this instance owns it (a
   * claim whose answer was lost with its connection).
   * @param {Slot} s
   * @param {Map<string, StoredLease>} byName
   */
  function adopt(s, byName) {
    const lease = byName.get(s.name)
    if (lease && lease.owner === owner && s.token === 0 && !s.handingOver) {
      s.token = lease.token
      s.renewedAt = 0
      s.validUntil = 0
    }
    return lease
  }

  async function readLeases() {
    const store = await opts.store
    /** @type {StoredLease[]} */
    const leases = partitions === 1 ? await store.leases(name) : (await store.leases()).filter((/** @type {StoredLease} */ l) => l.name.startsWith(`${name}#`))
    observe(leases)
    return new Map(leases.map((l) => [l.name, l]))
  }

  async function tick() {
    const now = performance.now()
    const byName = await readLeases()
    // renewals first: they keep what is held
    for (const s of [...slots, ...(member ? [member] : [])]) {
      adopt(s, byName)
      if (s.token > 0 && !s.handingOver && now - s.renewedAt >= leaseMs / 3) await renew(s)
      if (s.token > 0 && performance.now() >= s.validUntil && !s.handingOver) lose(s)
    }
    if (partitions === 1) {
      const s = slots[0]
      if (s.token === 0 && takeable(byName.get(s.name))) await claim(s, byName.get(s.name))
      return
    }
    await share(byName)
  }

  /**
   * Partitioned: hold a member slot, then as many partitions as this
   * instance's share (between floor and ceil of partitions / members).
   * @param {Map<string, StoredLease>} byName
   */
  async function share(byName) {
    if (!member || member.token === 0) {
      for (let i = 0; i < partitions && (!member || member.token === 0); i++) {
        const lease = byName.get(memberName(i))
        if (!takeable(lease)) continue
        const s = member || newSlot('', () => {})
        s.name = memberName(i)
        member = s
        await claim(s, lease)
      }
    }
    const live = new Set()
    for (let i = 0; i < partitions; i++) {
      const lease = byName.get(memberName(i))
      if (lease && !takeable(lease)) live.add(lease.owner)
    }
    live.add(owner)
    /** @type {Map<string, number>} */
    const held = new Map([...live].map((o) => [o, 0]))
    for (const s of slots) {
      const lease = byName.get(s.name)
      if (lease && live.has(lease.owner) && !takeable(lease)) held.set(lease.owner, (held.get(lease.owner) || 0) + 1)
    }
    const mine = slots.filter((s) => s.token > 0)
    held.set(owner, mine.length)
    const low = Math.floor(partitions / live.size)
    const high = Math.ceil(partitions / live.size)
    const someoneShort = [...held.values()].some((n) => n < low)
    const now = performance.now()
    if ((mine.length > high || (mine.length > low && someoneShort)) && now - lastRelease >= leaseMs) {
      lastRelease = now
      const s = mine[mine.length - 1]
      release(s).catch(opts.report)
      return
    }
    if (mine.length < low || (mine.length < high && !someoneShort)) {
      const free = slots.find((s) => s.token === 0 && !s.handingOver && takeable(byName.get(s.name)))
      if (free) await claim(free, byName.get(free.name))
    }
  }

  function schedule() {
    if (!running) return
    const anyHeld = slots.some((s) => s.token > 0)
    // a standby looks often (failover speed), a holder renews every third
    timer = setTimeout(run, anyHeld && partitions === 1 ? leaseMs / 3 : leaseMs / 6)
  }

  function run() {
    ticking = tick()
      .catch((err) => {
        // a store that cannot be reached: what is held stays held until it
        // is no longer valid, which tick() checks again next time
        for (const s of slots) if (s.token > 0 && performance.now() >= s.validUntil) lose(s)
        opts.report(err)
      })
      .finally(schedule)
  }

  return {
    owner,
    slot,
    holds,
    lose,
    /** Begins campaigning (at once). */
    start() {
      if (running) return
      running = true
      run()
    },
    /** Stops campaigning and releases every lease held, once each handler let go. */
    async stop() {
      running = false
      clearTimeout(timer)
      await ticking
      const held = [...slots, ...(member ? [member] : [])].filter((s) => s.token > 0)
      // a release that fails (the store closed first) is reported, not
      // thrown: the lease then ends by itself after a lease length
      await Promise.all(held.map((s) => release(s).catch(opts.report)))
      member = undefined
      observed.clear()
    },
  }
}

/**
 * The partition of an aggregate id: FNV-1a (32 bits) of its UTF-8 bytes,
 * modulo the partition count; the same in every process and version.
 * @param {string} aggregateId
 * @param {number} count
 */
function partitionOf(aggregateId, count) {
  const bytes = Buffer.from(String(aggregateId), 'utf8')
  let hash = 0x811c9dc5
  for (let i = 0; i < bytes.length; i++) {
    hash ^= bytes[i]
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash % count
}

module.exports = { createCoordinator, partitionOf, DEFAULT_LEASE_MS }
