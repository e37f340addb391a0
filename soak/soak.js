#!/usr/bin/env node
'use strict'
// Load and soak run of evtstore-rs (never part of `npm test`; a tiny run of it
// is, in __test__/soak-smoke.test.js).
//
//   npm run soak                      1,000,000 events on memory, SQLite (+ PostgreSQL),
//                                     60 s of 100 command streams on PostgreSQL
//   npm run soak -- --quick           a short run (~20 s)
//   npm run soak -- --help            every option
//
// PostgreSQL is used when a URL is given: --pg URL or EVTSTORE_SOAK_PG_URL.
// Tables soak_<pid>_* are created in that database and dropped afterwards.
//
// Each job runs in a child process of its own (this file with --child), so
// its memory figures are its own. The exit code is 1 when a check failed.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { fork, execFileSync } = require('node:child_process')
const { num: formatNumber } = require('../bench/lib/report')

const ROOT = path.resolve(__dirname, '..')
const DEFAULT_OUT = path.join(__dirname, 'RESULTS.md')

const FULL = { events: 1_000_000, seconds: 60, cacheAggregates: 100_000 }
const QUICK = { events: 20_000, seconds: 5, cacheAggregates: 10_000 }

const HELP = `usage: node soak/soak.js [options]

  --quick              short sizes: --events ${QUICK.events} --seconds ${QUICK.seconds} --cache-aggregates ${QUICK.cacheAggregates}
  --events N           events through a started handler, per store (default ${FULL.events})
  --batch N            events per append (default 100)
  --seconds N          duration of the concurrent command streams (default ${FULL.seconds})
  --streams N          concurrent command loops (default 100)
  --aggregates N       shared aggregates the loops write to (default 20)
  --cache-size N       cacheSize of the command streams' domain (default half of --aggregates)
  --cache-aggregates N aggregates loaded in the useCache memory job (default ${FULL.cacheAggregates}; 0 skips it)
  --stores LIST        stores of the events job: memory,sqlite,postgres
                       (default memory,sqlite, plus postgres with a URL)
  --commands-on LIST   stores of the command streams (default postgres with a URL, else sqlite)
  --pg URL             PostgreSQL server (or EVTSTORE_SOAK_PG_URL)
  --out FILE           write the results as Markdown (default ${path.relative(ROOT, DEFAULT_OUT)}
                       for a run with the full default sizes only)
  --no-out             write no file
`

/** A mistake on the command line: its message is enough. */
class UsageError extends Error {}

/** @param {string[]} argv */
function parseArgs(argv) {
  /** @type {Record<string, any>} */
  const o = {}
  const int = (/** @type {string} */ name, /** @type {string | undefined} */ v, min = 1) => {
    const n = Number(v)
    if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got ${v}`)
    return n
  }
  const list = (/** @type {string | undefined} */ v) => {
    const names = String(v || '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
    for (const n of names) if (!['memory', 'sqlite', 'postgres'].includes(n)) throw new UsageError(`unknown store ${n} (memory, sqlite, postgres)`)
    return names
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = () => argv[++i]
    if (a === '--help' || a === '-h') o.help = true
    else if (a === '--quick') o.quick = true
    else if (a === '--events') o.events = int(a, next())
    else if (a === '--batch') o.batch = int(a, next())
    else if (a === '--seconds') o.seconds = int(a, next())
    else if (a === '--streams') o.streams = int(a, next())
    else if (a === '--aggregates') o.aggregates = int(a, next())
    else if (a === '--cache-size') o.cacheSize = int(a, next())
    else if (a === '--cache-aggregates') o.cacheAggregates = int(a, next(), 0)
    else if (a === '--stores') o.stores = list(next())
    else if (a === '--commands-on') o.commandsOn = list(next())
    else if (a === '--pg') o.pgUrl = next()
    else if (a === '--out') o.out = next()
    else if (a === '--no-out') o.noOut = true
    else throw new UsageError(`unknown option ${a} (--help lists them)`)
  }
  return o
}

/** @param {Record<string, any>} o */
function config(o) {
  const sizes = o.quick ? QUICK : FULL
  const pgUrl = o.pgUrl || process.env.EVTSTORE_SOAK_PG_URL || ''
  const cfg = {
    events: o.events ?? sizes.events,
    seconds: o.seconds ?? sizes.seconds,
    cacheAggregates: o.cacheAggregates ?? sizes.cacheAggregates,
    batch: o.batch ?? 100,
    streams: o.streams ?? 100,
    aggregates: o.aggregates ?? 20,
    cacheSize: o.cacheSize,
    // the events job spreads its batches over this many aggregates
    eventAggregates: 1000,
    stores: o.stores ?? (pgUrl ? ['memory', 'sqlite', 'postgres'] : ['memory', 'sqlite']),
    commandsOn: o.commandsOn ?? [pgUrl ? 'postgres' : 'sqlite'],
    pgUrl,
    progress: true,
    // how long a handler may take to catch up after the writers stopped
    waitMs: 10 * 60 * 1000,
  }
  const full = cfg.events === FULL.events && cfg.seconds === FULL.seconds && cfg.cacheAggregates === FULL.cacheAggregates
  cfg.out = o.noOut ? '' : o.out ? path.resolve(o.out) : full ? DEFAULT_OUT : ''
  if ([...cfg.stores, ...cfg.commandsOn].includes('postgres') && !pgUrl) {
    throw new UsageError('postgres was asked for but no URL given: --pg URL or EVTSTORE_SOAK_PG_URL')
  }
  return cfg
}

/** Runs one job in a child process with --expose-gc; resolves with its result. */
function runChild(job) {
  return new Promise((resolve) => {
    const child = fork(__filename, ['--child'], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    let result
    child.on('message', (msg) => {
      result = msg
    })
    child.on('error', (err) => {
      result = result || { error: String(err && err.stack) }
    })
    child.on('exit', (code, signal) => {
      if (!result) result = { error: `child exited with ${signal || code} before it answered` }
      resolve({ ...job, ...result })
    })
    child.send(job)
  })
}

// ---------------------------------------------------------------------------
// formatting

/** The benchmark's number format, 'n/a' for a figure that is missing. @param {number} v */
function num(v) {
  return Number.isFinite(v) ? formatNumber(v) : 'n/a'
}
const mb = (/** @type {number} */ v) => `${num(v)} MB`
const ms = (/** @type {number} */ v) => `${num(v)} ms`
const trio = (/** @type {any} */ m, /** @type {string} */ key) =>
  m && m.start && m.middle && m.end ? `${num(m.start[key])} / ${num(m.middle[key])} / ${num(m.end[key])} MB` : 'n/a'

/** @param {string[]} headers @param {string[][]} rows */
function markdownTable(headers, rows) {
  const esc = (/** @type {string} */ s) => String(s).replace(/\|/g, '\\|')
  return [
    `| ${headers.map(esc).join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n')
}

/** @param {string[]} headers @param {string[][]} rows */
function consoleTable(headers, rows) {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const line = (/** @type {string[]} */ r) => r.map((c, i) => String(c).padEnd(w[i])).join('  ').trimEnd()
  return [line(headers), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n')
}

/** Rows are metrics, columns are stores. */
function eventsTable(/** @type {any[]} */ results) {
  const headers = ['', ...results.map((r) => r.label || r.store)]
  const row = (/** @type {string} */ name, /** @type {(r: any) => string} */ f) => [
    name,
    ...results.map((r) => (r.error ? 'ERROR' : f(r))),
  ]
  const rows = [
    row('events appended (batches of N to 1,000 aggregates)', (r) => `${r.events.toLocaleString('en-US')} (N = ${r.batch})`),
    row('append rate, handler running', (r) => `${num(r.append.eventsPerSecond)} events/s`),
    row('live handler: delivered once, in order', (r) => checkMark(r, 'live handler')),
    row('live handler: done after the last append', (r) => ms(r.live.lagAfterWriterMs)),
    row('live: RSS at start / middle / end', (r) => trio(r.live.mem, 'rss')),
    row('live: heap used after GC, start / middle / end', (r) => trio(r.live.mem, 'heapUsed')),
    row('catch-up handler from 0 (stored bookmark)', (r) => `${num(r.catchup.delivered / r.catchup.seconds)} events/s`),
    row('catch-up: delivered once, in order', (r) => checkMark(r, 'catch-up handler')),
    row('catch-up: RSS at start / middle / end', (r) => trio(r.catchup.mem, 'rss')),
    row('catch-up: heap used after GC, start / middle / end', (r) => trio(r.catchup.mem, 'heapUsed')),
    row('peak RSS of the process', (r) => mb(r.maxRss)),
    row('store size', (r) => (r.storeBytes ? mb(r.storeBytes / 2 ** 20) : 'in the heap')),
  ]
  return { headers, rows }
}

function commandsTable(/** @type {any[]} */ results) {
  const headers = ['', ...results.map((r) => r.label || r.store)]
  const row = (/** @type {string} */ name, /** @type {(r: any) => string} */ f) => [
    name,
    ...results.map((r) => (r.error ? 'ERROR' : f(r))),
  ]
  const rows = [
    row('command loops × shared aggregates', (r) => `${r.streams} × ${r.aggregates} (useCache, cacheSize ${r.cacheSize})`),
    row('duration', (r) => `${num(r.seconds)} s`),
    row('successful commands', (r) => `${r.commands.toLocaleString('en-US')} (${r.events.toLocaleString('en-US')} events)`),
    row('commands/s (successful)', (r) => num(r.commandsPerSecond)),
    row('commands/s in each quarter of the run', (r) =>
      r.commandsPerSecondByQuarter ? r.commandsPerSecondByQuarter.map(num).join(' / ') : 'n/a'
    ),
    row('events per aggregate at the end', (r) => num(r.eventsPerAggregateAtEnd)),
    row('attempts/s (incl. VersionErrors)', (r) => num(r.attemptsPerSecond)),
    row('VersionErrors (retried)', (r) => `${r.versionErrors.toLocaleString('en-US')} (${num((100 * r.versionErrors) / r.attempts)} % of attempts)`),
    row('attempt latency p50 / p99 / max', (r) => `${num(r.attempt.p50)} / ${num(r.attempt.p99)} / ${num(r.attempt.max)} ms`),
    row('command latency incl. retries p50 / p99 / max', (r) => `${num(r.command.p50)} / ${num(r.command.p99)} / ${num(r.command.max)} ms`),
    row('no lost event', (r) => checkMark(r, 'no lost event')),
    row('no duplicate (versions dense, each position once to the handler)', (r) => checkMark(r, 'no duplicate')),
    row('counts match', (r) => checkMark(r, 'counts match')),
    row('handler done after the last command', (r) => ms(r.handlerLagMs)),
    row('RSS at 0 / 25 / 50 / 75 / 100 % of the run', (r) => seriesAt(r.rssSeries, 1)),
    row('heap used at 0 / 25 / 50 / 75 / 100 % (no GC)', (r) => seriesAt(r.rssSeries, 2)),
    row('heap used after GC: start / end of load', (r) => `${num(r.memStart.heapUsed)} / ${num(r.memEndOfLoad.heapUsed)} MB`),
    row('peak RSS of the process', (r) => mb(r.maxRss)),
  ]
  return { headers, rows }
}

function cacheTable(/** @type {any} */ r) {
  const headers = [
    `getAggregate of ${r.aggregates.toLocaleString('en-US')} aggregates in turn, twice (memory)`,
    'heap kept after GC',
    'per cached aggregate',
    'first pass',
    'second pass',
  ]
  const rows = r.rows.map((/** @type {any} */ x) => [
    x.name,
    mb(x.heapMB),
    Number.isFinite(x.bytesPerCached) ? `${num(x.bytesPerCached)} B` : '',
    `${num(x.firstPassPerSecond)} loads/s`,
    `${num(x.secondPassPerSecond)} loads/s`,
  ])
  return { headers, rows }
}

/** @param {any[][]} series [t, rss, heap] @param {number} k */
function seriesAt(series, k) {
  if (!series || series.length === 0) return 'n/a'
  const at = (/** @type {number} */ f) => series[Math.min(series.length - 1, Math.round(f * (series.length - 1)))][k]
  return `${[0, 0.25, 0.5, 0.75, 1].map((f) => num(at(f))).join(' / ')} MB`
}

/** @param {any} r @param {string} prefix */
function checkMark(r, prefix) {
  const cs = (r.checks || []).filter((c) => c.name.startsWith(prefix))
  if (cs.length === 0) return 'n/a'
  return cs.every((c) => c.ok) ? 'yes' : 'NO'
}

function machine() {
  const cpus = os.cpus()
  let rev = 'unknown'
  try {
    rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim()
    if (dirty) rev += ' + local changes'
  } catch {
    /* not a git checkout */
  }
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version
  return {
    cpu: `${cpus.length} × ${cpus.length ? cpus[0].model.trim() : 'unknown'}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    pkg: `evtstore-rs ${version} (${rev})`,
  }
}

/** @param {string} url */
async function postgresFacts(url) {
  try {
    const { Client } = require('pg')
    const client = new Client({ connectionString: url })
    await client.connect()
    try {
      const { rows } = await client.query(
        "SELECT current_setting('server_version') AS v, current_setting('fsync') AS f, current_setting('synchronous_commit') AS s"
      )
      return `PostgreSQL ${rows[0].v} on ${new URL(url).hostname}, fsync ${rows[0].f}, synchronous_commit ${rows[0].s}`
    } finally {
      await client.end()
    }
  } catch (err) {
    return `PostgreSQL (could not read its settings: ${err && err.message})`
  }
}

/** The command line that reproduces this run. */
function commandLine() {
  const args = process.argv.slice(2)
  const shown = []
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--pg') {
      shown.push('--pg', '<url>')
      i++
    } else shown.push(args[i])
  }
  const env = process.env.EVTSTORE_SOAK_PG_URL && !args.includes('--pg') ? 'EVTSTORE_SOAK_PG_URL=<url> ' : ''
  return `${env}npm run soak${shown.length ? ' -- ' + shown.join(' ') : ''}`
}

async function main() {
  if (process.argv[2] === '--child') {
    // the parent is gone (killed): no one is left to report to
    process.once('disconnect', () => process.exit(1))
    process.once('message', async (job) => {
      const { run } = require('./jobs')
      let result
      try {
        result = await run(job)
      } catch (err) {
        result = { error: String((err && err.stack) || err) }
      }
      process.send(result, () => process.exit(0))
    })
    return
  }

  const opts = parseArgs(process.argv.slice(2))
  if (opts.help) {
    process.stdout.write(HELP)
    return
  }
  const cfg = config(opts)
  const startedAt = new Date()
  const load0 = os.loadavg()
  const facts = machine()
  const pgFacts = cfg.pgUrl ? await postgresFacts(cfg.pgUrl) : ''
  console.log(`evtstore-rs soak: ${cfg.events.toLocaleString('en-US')} events on ${cfg.stores.join(', ')}; ` +
    `${cfg.streams} command loops for ${cfg.seconds} s on ${cfg.commandsOn.join(', ')}`)

  const jobs = [
    ...cfg.stores.map((store) => ({ job: 'events', store })),
    ...(cfg.cacheAggregates > 0 ? [{ job: 'cache', store: 'memory' }] : []),
    ...cfg.commandsOn.map((store) => ({ job: 'commands', store })),
  ]
  /** @type {any[]} */
  const results = []
  for (const job of jobs) {
    const t = Date.now()
    console.log(`- ${job.job} on ${job.store} ...`)
    const r = await runChild({ ...job, cfg })
    r.wallSeconds = (Date.now() - t) / 1000
    results.push(r)
    if (r.error) console.log(`  ERROR: ${r.error}`)
    for (const c of r.checks || []) {
      console.log(`  ${c.ok ? 'ok' : 'FAILED'} - ${job.job} on ${job.store}: ${c.name}: ${c.detail}`)
    }
  }
  const failed = results.some((r) => r.error || (r.checks || []).some((c) => !c.ok))
  const seconds = (Date.now() - startedAt.getTime()) / 1000

  const sections = []
  const ev = results.filter((r) => r.job === 'events')
  if (ev.length) sections.push({ title: `${cfg.events.toLocaleString('en-US')} events through a started handler`, ...eventsTable(ev) })
  const cmds = results.filter((r) => r.job === 'commands')
  if (cmds.length) {
    sections.push({ title: `${cfg.streams} concurrent command streams for ${cfg.seconds} s`, ...commandsTable(cmds) })
  }
  const cache = results.find((r) => r.job === 'cache' && !r.error)
  if (cache) sections.push({ title: 'What useCache keeps in memory', ...cacheTable(cache) })

  console.log('')
  for (const s of sections) {
    console.log(`${s.title}\n\n${consoleTable(s.headers, s.rows)}\n`)
  }
  const errors = results.filter((r) => r.error)
  for (const r of errors) console.log(`ERROR in ${r.job} on ${r.store}: ${r.error}`)
  console.log(failed ? 'SOAK FAILED' : 'soak: every check passed')

  if (cfg.out) {
    const load1 = os.loadavg()
    const md = [
      '# Load and soak results',
      '',
      `Run on ${startedAt.toISOString().replace('T', ' ').replace(/\..*/, '')} UTC with \`${commandLine()}\`; it took ${Math.round(seconds)} s.`,
      '',
      `- Machine: ${facts.cpu}, ${facts.memory} memory, ${facts.os}`,
      `- Load average (1, 5, 15 min): ${load0.map((x) => x.toFixed(2)).join(', ')} before, ${load1.map((x) => x.toFixed(2)).join(', ')} after`,
      `- Node ${facts.node}; ${facts.pkg}`,
      ...(pgFacts ? [`- Database server: ${pgFacts}`] : []),
      '- Each store runs in a fresh process (node --expose-gc). "Heap used after GC" is `process.memoryUsage().heapUsed` right after `gc()`; RSS is `process.memoryUsage().rss`. Middle and end are taken inside the handler callback of the middle and the last event.',
      '- Events job: one writer appends batches through `provider.append` while a started handler (stored bookmark) consumes them; then a second handler catches up from position 0. Both check every event: sequence numbers consecutive, positions strictly increasing, versions consecutive per aggregate; then the count, the last position and the stored bookmark.',
      `- Command streams: ${cfg.streams} async loops, each issuing \`createCommands\` commands (every tenth appends two events) on one of ${cfg.aggregates} shared aggregates, retrying on \`VersionError\`; a started handler beside them. Afterwards the table is read with another driver (node-postgres, better-sqlite3) and every successful command's events are looked up at the versions it returned.`,
      '',
      ...sections.flatMap((s) => [`## ${s.title}`, '', markdownTable(s.headers, s.rows), '']),
      '## Checks',
      '',
      ...results.flatMap((r) =>
        r.error
          ? [`- ERROR in ${r.job} on ${r.store}: ${r.error.split('\n')[0]}`]
          : (r.checks || []).map((c) => `- ${c.ok ? 'ok' : '**FAILED**'} — ${r.job} on ${r.label}: ${c.name}: ${c.detail}`)
      ),
      '',
    ].join('\n')
    fs.writeFileSync(cfg.out, md)
    console.log(`written to ${path.relative(process.cwd(), cfg.out) || cfg.out}`)
  } else {
    console.log('no results file written (only a run with the full default sizes writes soak/RESULTS.md; --out FILE to write one)')
  }
  process.exitCode = failed ? 1 : 0
}

main().catch((err) => {
  console.error(err instanceof UsageError ? `soak: ${err.message}` : err && err.stack ? err.stack : err)
  process.exitCode = 2
})
