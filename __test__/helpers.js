'use strict'
// Shared fixtures for the tests: a users/posts domain, promise helpers and
// error assertions.
const assert = require('node:assert/strict')
const { root } = require('./pkg')

/** A promise with its resolve/reject exposed. */
function deferred() {
  let resolve, reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Resolves like `promise`, or rejects when `ms` pass first. Leaves no timer behind. */
function withTimeout(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** A plain delay. Only used where time itself is what is tested, never to wait for a result. */
function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Runs fn (sync or async) and returns what it threw; fails when it did not throw. */
async function caught(fn) {
  try {
    await fn()
  } catch (err) {
    return err
  }
  assert.fail('expected an error, but the call succeeded')
}

/**
 * Asserts that fn throws or rejects with an Error whose `code` is `code`, and,
 * unless the code is VERSION_CONFLICT, that it is no VersionError.
 */
async function assertCode(fn, code, messagePattern) {
  const err = await caught(fn)
  assert.ok(err instanceof Error, `expected an Error, got ${String(err)}`)
  assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`)
  if (code !== 'VERSION_CONFLICT') {
    assert.ok(!(err instanceof root().VersionError), `a ${code} error must not be a VersionError`)
  }
  if (messagePattern) assert.match(err.message, messagePattern)
  return err
}

/** Every stored event of the streams, paging so a provider limit does not cut it. */
async function allEvents(provider, streams = ['users', 'posts']) {
  const out = []
  let position = 0
  for (;;) {
    const batch = await provider.getEventsFrom(streams, position, 500)
    if (batch.length === 0) return out
    out.push(...batch)
    position = batch[batch.length - 1].position
  }
}

/** A comparable picture of the store's events (no Date objects). */
async function snapshot(provider, streams = ['users', 'posts']) {
  const events = await allEvents(provider, streams)
  return events.map((e) => ({
    stream: e.stream,
    aggregateId: e.aggregateId,
    version: e.version,
    position: e.position,
    timestamp: new Date(e.timestamp).getTime(),
    event: e.event,
  }))
}

function userFold(ev, agg) {
  switch (ev.type) {
    case 'created':
      return { name: ev.name, enabled: true }
    case 'disabled':
      return { enabled: false }
    case 'enabled':
      return { enabled: true }
    case 'loggedIn':
      return { logins: agg.logins + 1 }
    case 'renamed':
      return { name: ev.name }
    default:
      return {}
  }
}

function postFold(ev) {
  switch (ev.type) {
    case 'postCreated':
      return { userId: ev.userId, content: ev.content }
    case 'postArchived':
      return { archived: true }
    default:
      return {}
  }
}

const newUser = () => ({ name: '', enabled: false, logins: 0 })
const newPost = () => ({ userId: '', content: '', archived: false })

/**
 * A users/posts domain on `provider`.
 * opts: useCache, persist (persistAggregate with `version`), version, userFold.
 */
function makeDomain(provider, opts = {}) {
  const { createAggregate, createDomainV2, createCommands, CommandError } = root()
  const user = createAggregate({
    stream: 'users',
    create: newUser,
    fold: opts.userFold || userFold,
    version: opts.version,
    persistAggregate: !!opts.persist,
  })
  const post = createAggregate({ stream: 'posts', create: newPost, fold: postFold })
  const { domain, createHandler } = createDomainV2(
    { provider, useCache: opts.useCache },
    { user, post }
  )

  const userCmd = createCommands(domain.user, {
    async create(cmd, agg) {
      if (agg.version) throw new CommandError('User already exists', 'USER_EXISTS')
      return { type: 'created', name: cmd.name }
    },
    async disable() {
      return { type: 'disabled' }
    },
    async enable() {
      return { type: 'enabled' }
    },
    async login() {
      return { type: 'loggedIn' }
    },
    async loginTimes(cmd) {
      return Array.from({ length: cmd.n }, () => ({ type: 'loggedIn' }))
    },
    async rename(cmd) {
      return { type: 'renamed', name: cmd.name }
    },
    async noop() {},
    async emit(cmd) {
      return cmd.events
    },
  })

  const postCmd = createCommands(domain.post, {
    async createPost(cmd, agg) {
      if (agg.version) throw new CommandError('Post already exists')
      return { type: 'postCreated', userId: cmd.userId, content: cmd.content }
    },
    async archivePost(cmd, agg) {
      if (agg.archived) return
      return { type: 'postArchived' }
    },
  })

  return { domain, createHandler, userCmd, postCmd, user, post }
}

/**
 * The "our side reads their data" half of the evtstore@12.0.1 compatibility
 * tests (SQLite and PostgreSQL): on a provider over the tables evtstore's
 * `write` step filled (report `w`), the aggregate and bookmark read back, a
 * command extends the aggregate, and a handler sees all four events in
 * position order with Date timestamps. Returns the handled positions.
 * @param {any} provider
 * @param {{ bookmark: number, writeStart: number, writeEnd: number, resolution?: number }} w (resolution: ms the stored timestamps keep)
 */
async function readAndExtendEvtstoreRows(provider, w) {
  const ours = makeDomain(provider)
  assert.deepEqual(await ours.domain.user.getAggregate('u1'), {
    name: 'a',
    enabled: true,
    logins: 1,
    aggregateId: 'u1',
    version: 2,
  })
  assert.equal(await provider.getPosition('their-bm'), w.bookmark)
  const next = await ours.userCmd.login('u1', {})
  assert.equal(next.version, 3)
  assert.equal(next.logins, 2)

  const seen = []
  const handler = ours.createHandler('our-bm', ['users'])
  const record = (id, ev, meta) => {
    seen.push({ id, type: ev.type, version: meta.version, position: meta.position, meta })
  }
  handler.handle('users', 'created', record)
  handler.handle('users', 'loggedIn', record)
  assert.equal(await handler.runOnce(), 4)
  assert.deepEqual(
    seen.map((s) => [s.id, s.type, s.version]),
    [
      ['u1', 'created', 1],
      ['u1', 'loggedIn', 2],
      ['u2', 'created', 1],
      ['u1', 'loggedIn', 3],
    ]
  )
  for (const s of seen) assert.equal(typeof s.position, 'number')
  const positions = seen.map((s) => s.position)
  assert.deepEqual([...positions].sort((x, y) => x - y), positions)
  for (const s of seen.slice(0, 3)) {
    assert.ok(s.meta.timestamp instanceof Date, 'meta.timestamp is a Date')
    const ms = s.meta.timestamp.getTime()
    // evtstore's MySQL table keeps whole seconds
    const from = Math.floor(w.writeStart / (w.resolution || 1)) * (w.resolution || 1)
    assert.ok(ms >= from - 5 && ms <= w.writeEnd + 5, `timestamp ${ms} outside the writes`)
  }
  for (const e of await allEvents(provider, ['users'])) {
    assert.ok(e.timestamp instanceof Date, `StoreEvent timestamp is ${typeof e.timestamp}`)
  }
  return positions
}

module.exports = {
  readAndExtendEvtstoreRows,
  deferred,
  withTimeout,
  delay,
  caught,
  assertCode,
  allEvents,
  snapshot,
  userFold,
  postFold,
  newUser,
  newPost,
  makeDomain,
}

/**
 * Runs `node script ...args` and resolves with { code, signal, stdout, stderr, ms }
 * when it exits; kills it and rejects when it runs longer than timeoutMs.
 */
function runNode(script, args = [], { timeoutMs = 15000, env } = {}) {
  const { spawn } = require('node:child_process')
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${script} ${args.join(' ')} still running after ${timeoutMs} ms\n${stdout}\n${stderr}`))
    }, timeoutMs)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
  })
}

module.exports.runNode = runNode
