// The JavaScript program of scripts/install-test.sh, run in a project that
// installed the package: an aggregate, commands, a VersionError and a handler
// on an SQLite file. Argument: the name the package is installed under.
const name = process.argv[2] || 'evtstore'
const { createAggregate, createDomainV2, createCommands, VersionError } = require(name)
const { createProvider, migrate } = require(`${name}/provider/sqlite`)

const counter = createAggregate({ stream: 'counters', create: () => ({ n: 0 }), fold: (e, a) => ({ n: a.n + e.by }) })

async function main() {
  await migrate({ file: 'app.sqlite' })
  const provider = createProvider({ file: 'app.sqlite' })
  const { domain, createHandler } = createDomainV2({ provider }, { counter })
  const cmd = createCommands(domain.counter, { async add(c) { return { type: 'added', by: c.by } } })
  let seen = 0
  const h = createHandler('install-test', ['counters'])
  h.handle('counters', 'added', async () => { seen++ })
  await cmd.add('c1', { by: 2 })
  const agg = await cmd.add('c1', { by: 3 })
  if (agg.n !== 5 || agg.version !== 2) throw new Error('unexpected aggregate ' + JSON.stringify(agg))
  const err = await provider.append('counters', 'c1', 1, [{ type: 'added', by: 1 }]).catch((e) => e)
  if (!(err instanceof VersionError)) throw new Error('expected a VersionError, got ' + err)
  if ((await h.runOnce()) !== 2 || seen !== 2) throw new Error('handler saw ' + seen)
  await provider.close()
  console.log(`javascript program on SQLite (${name}): ok`)
}
main().catch((e) => { console.error(e); process.exit(1) })
