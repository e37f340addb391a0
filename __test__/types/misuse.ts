// Each line after a `@ts-expect-error` must be a type error: if the typings
// accept it, tsc reports the directive as unused and the type test fails.
import {
  createAggregate,
  createDomainV2,
  createCommands,
  createHandler as createStandaloneHandler,
} from 'evtstore'
import { createProvider } from 'evtstore/provider/memory'

type UserEvt = { type: 'created'; name: string } | { type: 'disabled' }
type UserAgg = { name: string; enabled: boolean }
type UserCmd = { type: 'create'; name: string } | { type: 'disable' }

type PostEvt = { type: 'postCreated'; content: string } | { type: 'postArchived' }
type PostAgg = { content: string; archived: boolean }

const user = createAggregate<UserEvt, UserAgg, 'users'>({
  stream: 'users',
  create: () => ({ name: '', enabled: false }),
  fold: (ev) => (ev.type === 'created' ? { name: ev.name, enabled: true } : { enabled: false }),
})

const post = createAggregate<PostEvt, PostAgg, 'posts'>({
  stream: 'posts',
  create: () => ({ content: '', archived: false }),
  fold: (ev) => (ev.type === 'postCreated' ? { content: ev.content } : { archived: true }),
})

const { domain, createHandler } = createDomainV2({ provider: createProvider() }, { user, post })

// a stream the domain does not have
// @ts-expect-error
createHandler('bad-stream', ['comments'])

const posts = createHandler('posts-only', ['posts'])

// a stream the handler is not subscribed to
// @ts-expect-error
posts.handle('users', 'created', async () => {})

// an event type of another stream
// @ts-expect-error
posts.handle('posts', 'created', async () => {})

// the event is narrowed by stream and type
posts.handle('posts', 'postArchived', async (_id, ev) => {
  // @ts-expect-error
  return ev.content
})

const userCmd = createCommands<UserEvt, UserAgg, UserCmd>(domain.user, {
  async create(cmd) {
    return { type: 'created', name: cmd.name }
  },
  async disable() {
    return { type: 'disabled' }
  },
})

// a command body missing a field
// @ts-expect-error
userCmd.create('u1', {})

// a command the aggregate does not have
// @ts-expect-error
userCmd.remove('u1', {})

// a command handler returning an event of another aggregate
createCommands<UserEvt, UserAgg, UserCmd>(domain.user, {
  // @ts-expect-error
  async create() {
    return { type: 'postCreated', content: 'x' }
  },
  async disable() {
    return { type: 'disabled' }
  },
})

// a fold returning a key the aggregate does not have
createAggregate<UserEvt, UserAgg, 'users'>({
  stream: 'users',
  create: () => ({ name: '', enabled: false }),
  // @ts-expect-error
  fold: () => ({ nope: 1 }),
})

// the standalone handler narrows by stream and type as well
const standalone = createStandaloneHandler<{ users: UserEvt; posts: PostEvt }>({
  bookmark: 'standalone',
  streams: ['users', 'posts'],
  provider: createProvider(),
})
// @ts-expect-error
standalone.handle('users', 'postCreated', async () => {})
standalone.handleStream('posts', {
  // @ts-expect-error
  created: async () => {},
})
