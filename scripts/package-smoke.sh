#!/usr/bin/env bash
# Installs the package the way a user does (npm pack, then npm install of the
# tarball in an empty project, which compiles the addon) and runs a plain
# JavaScript program and a TypeScript program compiled by tsc against it,
# through the drop-in name `evtstore` ("evtstore": "file:<tarball>").
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/evtstore-rs-smoke.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# Reuse the repository's compiled dependencies: the install compiles only our crate.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

cd "$repo"
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
cd "$work"
cat > package.json <<JSON
{ "name": "smoke", "version": "1.0.0", "private": true,
  "dependencies": { "evtstore": "file:./$tarball" } }
JSON
npm install --no-audit --no-fund --silent
npm install --no-audit --no-fund --silent --save-dev "typescript@$(node -p "require('$repo/node_modules/typescript/package.json').version")"

cat > app.js <<'JS'
const { createAggregate, createDomainV2, createCommands, VersionError } = require('evtstore')
const { createProvider, migrate } = require('evtstore/provider/sqlite')
const counter = createAggregate({ stream: 'counters', create: () => ({ n: 0 }), fold: (e, a) => ({ n: a.n + e.by }) })
;(async () => {
  await migrate({ file: 'app.sqlite' })
  const provider = createProvider({ file: 'app.sqlite' })
  const { domain, createHandler } = createDomainV2({ provider }, { counter })
  const cmd = createCommands(domain.counter, { async add(c) { return { type: 'added', by: c.by } } })
  let seen = 0
  const h = createHandler('smoke', ['counters'])
  h.handle('counters', 'added', async () => { seen++ })
  await cmd.add('c1', { by: 2 })
  const agg = await cmd.add('c1', { by: 3 })
  if (agg.n !== 5 || agg.version !== 2) throw new Error('unexpected aggregate ' + JSON.stringify(agg))
  const err = await provider.append('counters', 'c1', 1, [{ type: 'added', by: 1 }]).catch((e) => e)
  if (!(err instanceof VersionError)) throw new Error('expected a VersionError, got ' + err)
  if ((await h.runOnce()) !== 2 || seen !== 2) throw new Error('handler saw ' + seen)
  await provider.close()
  console.log('javascript program: ok')
})().catch((e) => { console.error(e); process.exit(1) })
JS
node app.js

cat > app.ts <<'TS'
import { createAggregate, createDomainV2, createCommands, CommandError } from 'evtstore'
import { createProvider } from 'evtstore/provider/memory'

type Evt = { type: 'opened'; owner: string } | { type: 'deposited'; amount: number }
type Agg = { owner: string; balance: number }
type Cmd = { type: 'open'; owner: string } | { type: 'deposit'; amount: number }

const account = createAggregate<Evt, Agg, 'accounts'>({
  stream: 'accounts',
  create: () => ({ owner: '', balance: 0 }),
  fold: (evt, agg) => (evt.type === 'opened' ? { owner: evt.owner } : { balance: agg.balance + evt.amount }),
})
const { domain, createHandler } = createDomainV2({ provider: createProvider() }, { account })
const cmd = createCommands<Evt, Agg, Cmd>(domain.account, {
  async open(c, agg) {
    if (agg.version) throw new CommandError('already open')
    return { type: 'opened', owner: c.owner }
  },
  async deposit(c) {
    return { type: 'deposited', amount: c.amount }
  },
})
const handler = createHandler('ts-smoke', ['accounts'])
let total = 0
handler.handle('accounts', 'deposited', async (_id, evt) => {
  total += evt.amount
})
async function main() {
  await cmd.open('a1', { owner: 'ada' })
  const after = await cmd.deposit('a1', { amount: 42 })
  await handler.runOnce()
  if (after.balance !== 42 || total !== 42) throw new Error(`unexpected ${after.balance} ${total}`)
  console.log('typescript program: ok')
}
// an unhandled rejection ends node with a non-zero exit code
void main()
TS
npx tsc --strict --target es2020 --module commonjs --outDir ts-out app.ts
node ts-out/app.js
echo "package smoke test: 2 passed, 0 failed"
