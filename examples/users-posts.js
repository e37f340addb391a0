// A small domain on an SQLite file: users and posts, commands, and a read model
// kept up to date by a started event handler. Run it with `npm run example`.
const path = require('node:path')
const os = require('node:os')
const fs = require('node:fs')
const { createAggregate, createDomainV2, createCommands, CommandError } = require('..')
const { createProvider, migrate } = require('../provider/sqlite')

const file = process.argv[2] || path.join(os.tmpdir(), `evtstore-rs-example-${process.pid}.sqlite`)

const user = createAggregate({
  stream: 'users',
  create: () => ({ name: '', enabled: false }),
  fold: (evt) => {
    switch (evt.type) {
      case 'created':
        return { name: evt.name, enabled: true }
      case 'disabled':
        return { enabled: false }
      case 'enabled':
        return { enabled: true }
    }
  },
})

const post = createAggregate({
  stream: 'posts',
  create: () => ({ userId: '', content: '', archived: false }),
  fold: (evt) => {
    switch (evt.type) {
      case 'postCreated':
        return { userId: evt.userId, content: evt.content }
      case 'postArchived':
        return { archived: true }
    }
  },
})

async function main() {
  await migrate({ file })
  const provider = createProvider({ file })
  const { domain, createHandler } = createDomainV2({ provider }, { user, post })

  const userCmd = createCommands(domain.user, {
    async create(cmd, agg) {
      if (agg.version) throw new CommandError('User already exists', 'USER_EXISTS')
      return { type: 'created', name: cmd.name }
    },
    async disable(_cmd, agg) {
      if (!agg.enabled) return
      return { type: 'disabled' }
    },
  })

  const postCmd = createCommands(domain.post, {
    async createPost(cmd, agg) {
      if (agg.version) throw new CommandError('Post already exists')
      const author = await domain.user.getAggregate(cmd.userId)
      if (!author.enabled) throw new CommandError('Unauthorized', 'UNAUTHORIZED')
      return { type: 'postCreated', userId: cmd.userId, content: cmd.content }
    },
    async archivePost(cmd, agg) {
      if (cmd.userId !== agg.userId) throw new CommandError('Not allowed', 'FORBIDDEN')
      if (agg.archived) return
      return { type: 'postArchived' }
    },
  })

  // The read model: posts per user, built by a started handler.
  const postsByUser = new Map()
  const model = createHandler('posts-by-user', ['users', 'posts'])
  model.handle('users', 'created', async (id, evt) => {
    postsByUser.set(id, { name: evt.name, posts: [] })
  })
  model.handle('posts', 'postCreated', async (id, evt) => {
    postsByUser.get(evt.userId)?.posts.push({ id, content: evt.content, archived: false })
  })
  model.handle('posts', 'postArchived', async (id) => {
    for (const entry of postsByUser.values()) {
      const found = entry.posts.find((p) => p.id === id)
      if (found) found.archived = true
    }
  })
  model.start()

  await userCmd.create('ada', { name: 'Ada' })
  await userCmd.create('alan', { name: 'Alan' })
  await postCmd.createPost('p1', { userId: 'ada', content: 'Notes on the Analytical Engine' })
  await postCmd.createPost('p2', { userId: 'alan', content: 'On Computable Numbers' })
  const archived = await postCmd.archivePost('p1', { userId: 'ada' })
  console.log(`post p1 is at version ${archived.version}, archived: ${archived.archived}`)

  try {
    await userCmd.create('ada', { name: 'Ada again' })
  } catch (err) {
    console.log(`refused as expected: ${err.message} (${err.code})`)
  }
  await userCmd.disable('alan', {})
  try {
    await postCmd.createPost('p3', { userId: 'alan', content: 'Not allowed any more' })
  } catch (err) {
    console.log(`refused as expected: ${err.message} (${err.code})`)
  }

  // Give the started handler the moment it needs to see the last events, then stop it.
  await waitUntil(() => postsByUser.get('alan')?.posts.length === 1 && postsByUser.get('ada')?.posts[0]?.archived)
  await model.stop()

  console.log('\nread model (posts by user):')
  for (const [id, entry] of postsByUser) {
    const posts = entry.posts.map((p) => `${p.id}${p.archived ? ' (archived)' : ''}: ${p.content}`)
    console.log(`  ${entry.name} <${id}>`)
    for (const line of posts) console.log(`    - ${line}`)
  }
  console.log(`\nhandler position: ${await model.getPosition()}`)
  await provider.close()
  if (process.argv[2]) {
    console.log(`events kept in ${file}`)
  } else {
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true })
    console.log(`events were stored in ${file} (removed; pass a file name to keep it)`)
  }
}

async function waitUntil(check, timeoutMs = 5000) {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('the read model did not catch up in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
