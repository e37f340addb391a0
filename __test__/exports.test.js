'use strict'
// The import paths and runtime exports a user of evtstore relies on.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { root, provider, ROOT } = require('./pkg')

test('the package root exports every function, value and class of SPEC.md', () => {
  const pkg = root()
  for (const name of [
    'createAggregate',
    'createDomainV2',
    'createDomain',
    'createDomainV1',
    'createCommands',
    'createHandler',
    'createBookmark',
    'createProvidedAggregate',
    'createPersistedAggregate',
  ]) {
    assert.equal(typeof pkg[name], 'function', `${name} is exported as a function`)
  }
  assert.equal(pkg.MemoryBookmark, '@@MemoryBookmark')

  const { CommandError, VersionError } = pkg
  const plain = new CommandError('not allowed', 'NOT_ALLOWED')
  assert.ok(plain instanceof Error)
  assert.equal(plain.msg, 'not allowed')
  assert.equal(plain.message, 'not allowed')
  assert.equal(plain.code, 'NOT_ALLOWED')
  assert.equal(new CommandError('no code').code, undefined)

  const conflict = new VersionError()
  assert.ok(conflict instanceof CommandError)
  assert.ok(conflict instanceof Error)
  assert.equal(conflict.message, 'Version conflict error')
  assert.equal(conflict.code, 'VERSION_CONFLICT')
  assert.equal(new VersionError('users/u1 at 3').message, 'Version conflict error: users/u1 at 3')
})

test('every provider import path of evtstore resolves and exports its functions', () => {
  const expected = {
    memory: ['createProvider'],
    postgres: ['createProvider', 'migrate'],
    pg: ['createProvider', 'migrate', 'migratePool', 'migrateClient'],
    knex: ['createProvider', 'migrate'],
    mongo: ['createProvider', 'migrate'],
    neo4j: ['createProvider', 'migrate'],
    'neo4j-v3': ['createProvider', 'migrate'],
    sqlite: ['createProvider', 'migrate'],
  }
  for (const [name, functions] of Object.entries(expected)) {
    const mod = provider(name)
    for (const fn of functions) {
      assert.equal(typeof mod[fn], 'function', `provider/${name} exports ${fn}`)
    }
  }
})

test('the memory provider takes initial events and an onError callback', async () => {
  const onError = () => {}
  const initial = [
    {
      stream: 'users',
      aggregateId: 'u1',
      version: 1,
      position: 1,
      timestamp: new Date(),
      event: { type: 'created', name: 'a' },
    },
  ]
  const prv = provider('memory').createProvider(initial, onError)
  assert.equal(prv.onError, onError)
  const events = await prv.getEventsFor('users', 'u1')
  assert.equal(events.length, 1)
  assert.deepEqual(events[0].event, { type: 'created', name: 'a' })
  const { VersionError } = root()
  await assert.rejects(
    prv.append('users', 'u1', 1, prv.createEvents('users', 'u1', 1, [{ type: 'x' }])),
    (err) => err instanceof VersionError
  )
  const [next] = await prv.append('users', 'u1', 2, prv.createEvents('users', 'u1', 2, [{ type: 'x' }]))
  assert.ok(next.position > 1)
})

test('the package name resolves through package.json "exports" to the root and every provider', (t) => {
  // self-reference only works for the package this file lives in
  if (ROOT !== path.resolve(__dirname, '..')) return t.skip('EVTSTORE_TEST_ROOT points at another package')
  const { name } = require(path.join(ROOT, 'package.json'))
  // a module inside the package can require it by its own name (self-reference)
  assert.equal(require.resolve(name), path.join(ROOT, 'index.js'))
  for (const p of ['memory', 'sqlite', 'knex', 'postgres', 'pg', 'mongo', 'neo4j', 'neo4j-v3']) {
    assert.equal(require.resolve(`${name}/provider/${p}`), path.join(ROOT, 'provider', `${p}.js`))
  }
  assert.equal(require(name), root())
})
