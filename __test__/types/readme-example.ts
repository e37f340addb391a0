// The users/posts example of evtstore's README, with its typos fixed. It must
// compile unchanged against this package.
import { createAggregate, createDomainV2, createCommands, CommandError } from 'evtstore'
import { createProvider } from 'evtstore/provider/memory'

type UserEvt = { type: 'created'; name: string } | { type: 'disabled' } | { type: 'enabled' }
type UserAgg = { name: string; enabled: boolean }
type UserCmd = { type: 'create'; name: string } | { type: 'enable' } | { type: 'disable' }

type PostEvt = { type: 'postCreated'; userId: string; content: string } | { type: 'postArchived' }
type PostAgg = { userId: string; content: string; archived: boolean }
type PostCmd =
  | { type: 'createPost'; userId: string; content: string }
  | { type: 'archivePost'; userId: string }

const user = createAggregate<UserEvt, UserAgg, 'users'>({
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

const post = createAggregate<PostEvt, PostAgg, 'posts'>({
  stream: 'posts',
  create: () => ({ content: '', userId: '', archived: false }),
  fold: (evt) => {
    switch (evt.type) {
      case 'postCreated':
        return { userId: evt.userId, content: evt.content }
      case 'postArchived':
        return { archived: true }
    }
  },
})

const provider = createProvider()
export const { domain, createHandler } = createDomainV2({ provider }, { user, post })

export const userCmd = createCommands<UserEvt, UserAgg, UserCmd>(domain.user, {
  async create(cmd, agg) {
    if (agg.version) throw new CommandError('User already exists')
    return { type: 'created', name: cmd.name }
  },
  async disable(_cmd, agg) {
    if (!agg.enabled) return
    return { type: 'disabled' }
  },
  async enable(_cmd, agg) {
    if (agg.enabled) return
    return { type: 'enabled' }
  },
})

export const postCmd = createCommands<PostEvt, PostAgg, PostCmd>(domain.post, {
  async createPost(cmd, agg) {
    if (agg.version) throw new CommandError('Post already exists')
    const user = await domain.user.getAggregate(cmd.userId)
    if (!user.version) throw new CommandError('Unauthorized')
    return { type: 'postCreated', content: cmd.content, userId: cmd.userId }
  },
  async archivePost(cmd, agg) {
    if (cmd.userId !== agg.userId) throw new CommandError('Not allowed')
    if (agg.archived) return
    return { type: 'postArchived' }
  },
})

const postModel = createHandler('posts-model', ['posts'], {
  // When the event handler is started for the first time, the handler will begin at the end of the stream(s) history
  tailStream: false,
  // Every time the event handler is started, the handler will begin at the end of the stream(s) history
  alwaysTailStream: false,
  // Skip events that throw an error when being handled
  continueOnError: false,
})

postModel.handle('posts', 'postCreated', async (id, event, meta) => {
  // Insert into database
  const row: { id: string; userId: string; content: string; at: Date; position: unknown } = {
    id,
    userId: event.userId,
    content: event.content,
    at: meta.timestamp,
    position: meta.position,
  }
  return row
})

postModel.start()

// What the calls give back is typed too.
export async function usage() {
  const created = await userCmd.create('u1', { name: 'Ada' })
  const name: string = created.name
  const version: number = created.version
  const id: string = created.aggregateId
  const loaded = await domain.post.getAggregate('p1')
  const archived: boolean = loaded.archived
  const read: number = await postModel.runOnce()
  postModel.stop()
  return { name, version, id, archived, read }
}
