#!/usr/bin/env node
'use strict'

// Side-by-side benchmarks: evtstore 12.0.1 (npm registry) against evtstore-rs
// (this repository), on the same kind of store in the same run.
//
// Every measurement is one worker process (worker.js) running one scenario
// for one implementation. Repetitions are interleaved: for each repetition,
// every scenario runs the original, then ours (A B A B ...), so that a burst
// of load on the machine hits both. Reported: median, min–max, and the ratio
// original/ours of the medians (> 1: evtstore-rs is faster).
//
// Usage: node run.js [--quick] [--reps N] [--stores memory,sqlite,pg,mysql,neo4j,mongo,knex-sqlite,sqlite-normal]
//                    [--only REGEX] [--set key=value] [--out FILE] [--timeout S] [--list]
// Env:   EVTSTORE_BENCH_PG_URL  a PostgreSQL URL: adds the 'pg' store
//        EVTSTORE_BENCH_MYSQL_URL  a MySQL/MariaDB URL: the 'mysql' store
//        EVTSTORE_BENCH_NEO4J_URL  a Bolt URL (scripts/neo4j.sh start 4.4): allows the 'neo4j' store
//        EVTSTORE_BENCH_MONGO_URL  a mongodb:// URL (scripts/ferretdb.sh start): allows the 'mongo' store (ours only)
//        EVTSTORE_BENCH_OURS  measure another evtstore-rs checkout than this one
//        EVTSTORE_BENCH_BASELINE  also measure a second checkout ('baseline': before/after)
//        BENCH_QUICK=1 (--quick), BENCH_REPS (--reps), BENCH_DATA_DIR (scratch files)

const fs = require('fs')
const os = require('os')
const path = require('path')
const { spawn } = require('child_process')
const { SCENARIOS, SIZES, fmtN } = require('./lib/scenarios')
const data = require('./lib/data')
const report = require('./lib/report')

const { ROOT, BASE } = require('./lib/impls')
/** original, ours and (EVTSTORE_BENCH_BASELINE) another evtstore-rs checkout */
const IMPLS = BASE ? ['orig', 'ours', 'base'] : ['orig', 'ours']
/** @type {Record<string, string>} */
const IMPL_NAME = { orig: 'evtstore 12.0.1', ours: 'evtstore-rs', base: 'evtstore-rs baseline' }
/** @param {string} impl */
const who = (impl) => (impl === 'orig' ? 'original' : impl === 'ours' ? 'ours' : 'baseline')
const STORE_NAME = {
  memory: 'memory',
  sqlite: 'SQLite file',
  'knex-sqlite': 'SQLite file (ours via knex)',
  'sqlite-normal': "SQLite file, ours with synchronous: 'normal' (not durable on a power cut)",
  pg: 'PostgreSQL',
  mysql: 'MariaDB (knex mysql2)',
  neo4j: 'Neo4j',
  mongo: 'MongoDB',
}
/**
 * Stores where the original is not run, and why (the original column says
 * so; no ratio, no target).
 * @type {Record<string, string>}
 */
const ORIGINAL_NOT_RUN = {
  mongo: "not run: evtstore's MongoDB provider needs server-filled Timestamps; FerretDB stores Timestamp(0, 0)",
}
/** @param {string} store */
const implsFor = (store) => (store in ORIGINAL_NOT_RUN ? IMPLS.filter((i) => i !== 'orig') : IMPLS)
/** The SQLite stores: the same data and scenarios as 'sqlite'. */
const SQLITE_STORES = ['sqlite', 'knex-sqlite', 'sqlite-normal']
/** @param {string} store the store whose scenarios and targets it shares */
const baseStore = (store) => (SQLITE_STORES.includes(store) ? 'sqlite' : store)

function usage() {
  return `node run.js [options]
  --quick            tiny sizes and 2 repetitions: a smoke run of a few seconds (BENCH_QUICK=1)
  --reps N           repetitions per scenario and implementation (default 5; BENCH_REPS)
  --stores LIST      comma-separated: memory, sqlite, pg, mysql, knex-sqlite, sqlite-normal, neo4j, mongo
                     (default memory,sqlite, plus pg when EVTSTORE_BENCH_PG_URL is set)
  --only REGEX       scenarios whose id matches (see --list)
  --set key=value    override a size (e.g. --set catchup=5000, --set memStored=[0,1000])
  --out FILE         where to write the Markdown results (default: bench/RESULTS.md;
                     a --quick run writes nothing unless --out is given)
  --timeout S        seconds before a worker is killed (default 900)
  --list             list the scenarios and sizes, then exit`
}

function parseArgs(argv) {
  const opts = {
    quick: process.env.BENCH_QUICK === '1',
    reps: process.env.BENCH_REPS ? Number(process.env.BENCH_REPS) : undefined,
    stores: undefined,
    only: undefined,
    overrides: {},
    out: undefined,
    timeout: 900,
    list: false,
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--quick') opts.quick = true
    else if (a === '--reps') opts.reps = Number(next())
    else if (a === '--stores') opts.stores = next().split(',').map((s) => s.trim()).filter(Boolean)
    else if (a === '--only') opts.only = new RegExp(next())
    else if (a === '--out') opts.out = next()
    else if (a === '--timeout') opts.timeout = Number(next())
    else if (a === '--list') opts.list = true
    else if (a === '--set') {
      const [k, ...rest] = next().split('=')
      const v = rest.join('=')
      opts.overrides[k] = JSON.parse(v)
    } else if (a === '--help' || a === '-h') {
      console.log(usage())
      process.exit(0)
    } else throw new Error(`unknown option ${a}\n${usage()}`)
  }
  if (opts.reps === undefined) opts.reps = opts.quick ? 2 : 5
  if (!Number.isInteger(opts.reps) || opts.reps < 1) throw new Error('--reps must be a positive integer')
  const pgUrl = process.env.EVTSTORE_BENCH_PG_URL
  const mysqlUrl = process.env.EVTSTORE_BENCH_MYSQL_URL
  const mongoUrl = process.env.EVTSTORE_BENCH_MONGO_URL
  if (!opts.stores) opts.stores = pgUrl ? ['memory', 'sqlite', 'pg'] : ['memory', 'sqlite']
  for (const s of opts.stores) {
    if (!(s in STORE_NAME)) throw new Error(`unknown store ${s}`)
    if (s === 'pg' && !pgUrl) throw new Error('the pg store needs EVTSTORE_BENCH_PG_URL (a postgres:// URL)')
    if (s === 'mysql' && !mysqlUrl) throw new Error('the mysql store needs EVTSTORE_BENCH_MYSQL_URL (a mysql:// URL)')
    if (s === 'neo4j' && !process.env.EVTSTORE_BENCH_NEO4J_URL) {
      throw new Error('the neo4j store needs EVTSTORE_BENCH_NEO4J_URL (a bolt:// URL: scripts/neo4j.sh start 4.4)')
    }
    if (s === 'mongo' && !mongoUrl) throw new Error('the mongo store needs EVTSTORE_BENCH_MONGO_URL (a mongodb:// URL: scripts/ferretdb.sh start)')
  }
  if (opts.out === undefined && !opts.quick) opts.out = path.join(__dirname, 'RESULTS.md')
  return { ...opts, pgUrl, mysqlUrl, mongoUrl }
}

/**
 * Runs one worker; resolves with its result (or { error }).
 * @param {any} spec
 * @param {number} timeoutS
 */
function runWorker(spec, timeoutS) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'worker.js'), JSON.stringify(spec)], {
      cwd: __dirname,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutS * 1000)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const line = out.split('\n').find((l) => l.startsWith('RESULT '))
      if (timedOut) return resolve({ error: `timed out after ${timeoutS} s` })
      if (!line) {
        const tail = err.trim().split('\n').slice(-3).join(' ')
        return resolve({ error: `worker exited (${signal || code}) without a result: ${tail}` })
      }
      const result = JSON.parse(line.slice('RESULT '.length))
      if (err.trim()) result.stderr = err.trim().split('\n').slice(-3).join(' ')
      resolve(result)
    })
  })
}

/** @param {number} ms */
function duration(ms) {
  const s = Math.round(ms / 1000)
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`
}

/** @param {string} url */
async function pgServer(url) {
  const { Pool } = require('pg')
  const pool = new Pool({ connectionString: url, max: 1 })
  try {
    const { rows } = await pool.query(
      "SELECT current_setting('server_version') AS v, current_setting('fsync') AS f, current_setting('synchronous_commit') AS s"
    )
    const host = new URL(url).hostname
    return `PostgreSQL ${rows[0].v} on ${host}, fsync ${rows[0].f}, synchronous_commit ${rows[0].s}`
  } finally {
    await pool.end()
  }
}

/** @param {string} url */
async function mysqlServer(url) {
  const conn = await require('mysql2/promise').createConnection({ uri: url })
  try {
    const [rows] = await conn.query('SELECT VERSION() AS v, @@innodb_flush_log_at_trx_commit AS f')
    const r = /** @type {any[]} */ (rows)[0]
    return `MySQL server ${r.v} on ${new URL(url).hostname}, innodb_flush_log_at_trx_commit ${r.f}`
  } finally {
    await conn.end()
  }
}

/** @param {string} url */
async function mongoServer(url) {
  const { MongoClient } = require('mongodb')
  const client = new MongoClient(url)
  try {
    const info = await client.db('admin').command({ buildInfo: 1 })
    // FerretDB answers with the MongoDB version it imitates, and its own
    // ('unknown' when built from source, as scripts/ferretdb.sh does)
    const ferret = info.ferretdbVersion === 'unknown' ? 'FerretDB (built from source: no version given)' : `FerretDB ${info.ferretdbVersion}`
    const server = info.ferretdbVersion ? `${ferret}, MongoDB protocol, reports ${info.version}` : `MongoDB ${info.version}`
    return `${server} on ${new URL(url).hostname}`
  } finally {
    await client.close()
  }
}

/**
 * The URL of a database of one run's own.
 * @param {string} url
 * @param {string} database
 */
function mongoDatabaseUrl(url, database) {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** Drops the databases a killed worker may have left. @param {string} url @param {string} prefix */
async function mongoCleanup(url, prefix) {
  const { MongoClient } = require('mongodb')
  const client = new MongoClient(url)
  try {
    const { databases } = await client.db('admin').admin().listDatabases({ nameOnly: true })
    for (const d of databases) if (d.name.startsWith(prefix)) await client.db(d.name).dropDatabase()
  } finally {
    await client.close()
  }
}

async function pgCleanup(url, prefix) {
  const { Pool } = require('pg')
  const pool = new Pool({ connectionString: url, max: 1 })
  try {
    const { rows } = await pool.query(`SELECT tablename FROM pg_tables WHERE tablename LIKE $1`, [`${prefix}%`])
    for (const r of rows) await pool.query(`DROP TABLE IF EXISTS "${r.tablename}"`)
  } finally {
    await pool.end()
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const size = opts.quick ? 'quick' : 'full'
  const z = { ...SIZES[size], ...opts.overrides }
  const scenarios = SCENARIOS.filter((s) => !opts.only || opts.only.test(s.id))

  if (opts.list) {
    for (const s of SCENARIOS) console.log(`${s.id.padEnd(20)} ${s.title(z)} [${s.stores.join(', ')}]`)
    console.log(`sizes (${size}): ${JSON.stringify(z)}`)
    return
  }

  /** the jobs of one repetition: [scenario, store] */
  const jobs = []
  for (const s of scenarios) for (const store of opts.stores) if (s.stores.includes(baseStore(store))) jobs.push({ s, store })
  if (jobs.length === 0) throw new Error('no scenario selected')

  const started = Date.now()
  const loadBefore = os.loadavg()
  /** @type {any} */
  const info = report.machine(ROOT)
  if (opts.stores.includes('pg')) info.postgres = await pgServer(opts.pgUrl)
  if (opts.stores.includes('mysql')) info.mysql = await mysqlServer(opts.mysqlUrl)
  if (opts.stores.includes('mongo')) info.mongo = await mongoServer(opts.mongoUrl)
  console.log(`evtstore-rs benchmarks (${size}), ${opts.reps} repetitions, stores: ${opts.stores.join(', ')}`)
  console.log(`${info.cores} x ${info.cpu}, ${info.memoryGiB} GiB, Node ${info.node}, load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`)
  if (info.postgres) console.log(info.postgres)
  if (info.mysql) console.log(info.mysql)
  if (info.mongo) console.log(info.mongo)

  const dataDir = process.env.BENCH_DATA_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'evtstore-rs-bench-'))
  fs.mkdirSync(dataDir, { recursive: true })
  // tables, labels and databases of this run: evtbench_<pid>_<run>...
  const namePrefix = `evtbench_${process.pid}_`
  /** @type {Map<string, Record<string, any[]>>} */
  const results = new Map()
  let runNo = 0
  try {
    // SQLite templates, made once (untimed)
    const templates = new Map()
    for (const { s, store } of jobs) {
      if (!SQLITE_STORES.includes(store)) continue
      const ds = s.dataset(z)
      if (!templates.has(ds)) {
        process.stdout.write(`preparing SQLite data ${ds} ... `)
        templates.set(ds, await data.sqliteTemplate(dataDir, ds))
        console.log('done')
      }
    }

    const total = jobs.reduce((sum, { store }) => sum + implsFor(store).length, 0) * opts.reps
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const { s, store } of jobs) {
        const key = `${s.id}\0${store}`
        if (!results.has(key)) results.set(key, Object.fromEntries(IMPLS.map((i) => [i, []])))
        const bucket = /** @type {Record<string, any[]>} */ (results.get(key))
        for (const impl of implsFor(store)) {
          runNo++
          const spec = { scenario: s.id, impl, store, size, overrides: opts.overrides }
          let file
          if (SQLITE_STORES.includes(store)) {
            file = path.join(dataDir, `run-${impl}.sqlite`)
            data.copyTemplate(templates.get(s.dataset(z)), file)
            Object.assign(spec, { file })
          }
          if (store === 'mysql' || store === 'neo4j') {
            Object.assign(spec, {
              url: store === 'mysql' ? opts.mysqlUrl : process.env.EVTSTORE_BENCH_NEO4J_URL,
              events: `${namePrefix}${runNo}_events`,
              bookmarks: `${namePrefix}${runNo}_bookmarks`,
            })
          }
          if (store === 'mongo') Object.assign(spec, { url: mongoDatabaseUrl(opts.mongoUrl, `${namePrefix}${runNo}`) })
          if (store === 'pg') {
            Object.assign(spec, {
              url: opts.pgUrl,
              events: `${namePrefix}${runNo}_events`,
              bookmarks: `${namePrefix}${runNo}_bookmarks`,
            })
          }
          const t0 = Date.now()
          const r = await runWorker(spec, opts.timeout)
          if (file) data.removeSqlite(file)
          bucket[impl].push(r)
          const shown = r.error ? `FAILED: ${r.error}` : `${report.num(r.value)} ${s.unit}`
          console.log(
            `[${String(runNo).padStart(String(total).length)}/${total}] rep ${rep + 1} ${s.id} ${store} ${impl}: ${shown} (${duration(Date.now() - t0)})`
          )
        }
      }
    }
  } finally {
    if (!process.env.BENCH_DATA_DIR) fs.rmSync(dataDir, { recursive: true, force: true })
    if (opts.stores.includes('pg')) await pgCleanup(opts.pgUrl, namePrefix).catch(() => {})
    if (opts.stores.includes('mongo')) await mongoCleanup(opts.mongoUrl, namePrefix).catch(() => {})
  }
  const loadAfter = os.loadavg()
  const elapsed = Date.now() - started

  const { headers, rows, findings } = summarize(jobs, results, z)
  console.log('')
  console.log(report.consoleTable(headers, rows))
  console.log('')
  for (const f of findings) console.log(`- ${f}`)
  console.log(`\nload average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}; ${duration(elapsed)}`)

  if (opts.out) {
    const md = markdown({ info, opts, z, size, headers, rows, findings, loadBefore, loadAfter, elapsed })
    fs.writeFileSync(opts.out, md)
    console.log(`written to ${path.relative(process.cwd(), opts.out) || opts.out}`)
  }
}

/**
 * @param {any[]} runs
 */
function values(runs) {
  return runs.filter((r) => !r.error && Number.isFinite(r.value)).map((r) => r.value)
}

/** @param {any[]} runs */
function firstError(runs) {
  const r = runs.find((x) => x.error)
  return r ? r.error : undefined
}

/**
 * @param {any[]} jobs
 * @param {Map<string, Record<string, any[]>>} results
 * @param {any} z
 */
function summarize(jobs, results, z) {
  const headers = ['scenario', 'store', IMPL_NAME.orig, IMPL_NAME.ours, 'ratio', 'target', 'notes']
  if (BASE) headers.splice(5, 0, IMPL_NAME.base, 'baseline/ours')
  /** @type {string[][]} */
  const rows = []
  /** @type {string[]} */
  const findings = []
  /** @type {Record<string, number>} */
  const oursLatency = {}

  for (const { s, store } of jobs) {
    const bucket = /** @type {Record<string, any[]>} */ (results.get(`${s.id}\0${store}`))
    const so = report.stats(values(bucket.orig))
    const su = report.stats(values(bucket.ours))
    const r = so && su ? so.median / su.median : NaN
    const notes = []
    for (const impl of IMPLS) {
      const err = firstError(bucket[impl])
      if (err) notes.push(`${who(impl)} failed ${bucket[impl].filter((x) => x.error).length}/${bucket[impl].length}: ${err}`)
    }
    const storeKey = baseStore(store)

    // the target
    let target = '≥ 1× (not slower)'
    let met = Number.isFinite(r) ? r >= 1 : undefined
    if (s.targetOurs !== undefined && (!s.targetStores || s.targetStores.includes(storeKey))) {
      target = `ours ≤ ${s.targetOurs} ${s.unit}`
      met = su ? su.median <= s.targetOurs : undefined
    } else if (s.targetRatio !== undefined && s.targetStores && s.targetStores.includes(storeKey)) {
      target = `≥ ${s.targetRatio}×`
      met = Number.isFinite(r) ? r >= s.targetRatio : undefined
    }
    const notRun = ORIGINAL_NOT_RUN[store]
    // a target that does not apply here, and why: never counted as missed
    const noTarget = notRun ? 'none (evtstore-rs alone)' : s.noTarget && s.noTarget[storeKey]
    if (noTarget) {
      target = noTarget
      met = undefined
    }
    const targetCell = noTarget ? target : met === undefined ? `${target}: n/a` : `${target}: ${met ? 'met' : 'MISSED'}`
    if (met === false) findings.push(`MISSED: ${s.title(z)} on ${STORE_NAME[store]}: ${target}, got ${Number.isFinite(r) ? report.ratio(r) : 'n/a'}${s.targetOurs !== undefined && su ? ` (ours ${report.num(su.median)} ${s.unit})` : ''}`)

    // scenario-specific notes
    if (s.id === 'cmd-conc-one') {
      for (const impl of IMPLS) {
        const outcomes = [...new Set(bucket[impl].filter((x) => !x.error).map((x) => `${x.ok} ok, ${x.versionErrors} VersionError${x.otherErrors ? `, ${x.otherErrors} other errors (${x.otherMessage})` : ''}, ${x.duplicates} duplicate versions stored`))]
        if (outcomes.length) notes.push(`${who(impl)}: ${outcomes.join(' / ')}`)
        if (impl === 'ours' && bucket.ours.some((x) => !x.error && x.duplicates !== 0)) findings.push(`ERROR: evtstore-rs stored duplicate versions on ${STORE_NAME[store]}`)
      }
    }
    if (s.id.startsWith('handler-delay')) {
      for (const impl of IMPLS) {
        const ok = bucket[impl].filter((x) => !x.error)
        if (!ok.length) continue
        const p99 = report.median(ok.map((x) => x.p99))
        const max = Math.max(...ok.map((x) => x.max))
        notes.push(`${who(impl)} p99 ${report.num(p99)} ms, max ${report.num(max)} ms`)
      }
    }
    if (s.id.startsWith('mem-latency')) {
      for (const impl of IMPLS) {
        const capped = bucket[impl].filter((x) => !x.error && x.capped)
        if (capped.length) {
          notes.push(`${who(impl)} capped at ${report.num(z.memCapMs / 1000)} s: ${report.num(report.median(capped.map((x) => x.commands)))} of ${report.num(z.memCommands)} commands`)
        }
      }
      if (su) oursLatency[s.id] = su.median
    }
    if (s.id.startsWith('hydrate')) {
      const any = bucket.ours.find((x) => !x.error) || bucket.orig.find((x) => !x.error)
      if (any) notes.push(`median of ${any.reads} reads per run after one warm-up read`)
    }
    const row = [
      s.title(z),
      STORE_NAME[store],
      notRun || (so ? report.cell(so, s.unit) : 'failed'),
      su ? report.cell(su, s.unit) : 'failed',
      report.ratio(r),
      targetCell,
      notes.join('; '),
    ]
    if (BASE) {
      const sb = report.stats(values(bucket.base))
      row.splice(5, 0, sb ? report.cell(sb, s.unit) : 'failed', report.ratio(sb && su ? sb.median / su.median : NaN))
    }
    rows.push(row)

    if (s.secondaryRss) {
      const ro = report.stats(bucket.orig.filter((x) => !x.error).map((x) => x.rssMB))
      const ru = report.stats(bucket.ours.filter((x) => !x.error).map((x) => x.rssMB))
      const rr = ro && ru ? ro.median / ru.median : NaN
      const rssRow = [
        `peak RSS of that worker process`,
        STORE_NAME[store],
        notRun || (ro ? report.cell(ro, 'MB') : 'failed'),
        ru ? report.cell(ru, 'MB') : 'failed',
        report.ratio(rr),
        '',
        store === 'memory' ? 'includes the stored events and the initEvents array they were loaded from' : 'process.resourceUsage().maxRSS',
      ]
      if (BASE) {
        const rb = report.stats(bucket.base.filter((x) => !x.error).map((x) => x.rssMB))
        rssRow.splice(5, 0, rb ? report.cell(rb, 'MB') : 'failed', report.ratio(rb && ru ? rb.median / ru.median : NaN))
      }
      rows.push(rssRow)
    }
  }

  const lat = ['mem-latency-0', 'mem-latency-1', 'mem-latency-2'].map((k) => oursLatency[k])
  if (lat.every(Number.isFinite)) {
    const growth = Math.max(lat[1], lat[2]) / lat[0]
    findings.push(
      `evtstore-rs in-memory command latency with ${z.memStored.map(fmtN).join(' / ')} events stored: ${lat.map((v) => report.num(v)).join(' / ')} µs (largest/empty ${growth.toFixed(2)}×: ${growth <= 1.5 ? 'flat' : 'GROWS with the store'})`
    )
  }
  return { headers, rows, findings }
}

/** @param {any} a */
function markdown(a) {
  const { info, opts, z, size, headers, rows, findings, loadBefore, loadAfter, elapsed } = a
  const la = (/** @type {number[]} */ l) => l.map((x) => x.toFixed(2)).join(', ')
  const lines = [
    '# Benchmark results: evtstore-rs against evtstore 12.0.1',
    '',
    `Run on ${new Date().toISOString().replace('T', ' ').replace(/\..*/, ' UTC')} with \`npm run bench\`${size === 'quick' ? ' (--quick sizes)' : ''}: ${opts.reps} repetitions, each scenario run in a fresh process per implementation, interleaved (original, ours, original, ours, ...). Cells are the median and (min–max) of the repetitions; **ratio** is original median / evtstore-rs median, so above 1× evtstore-rs is faster. Lower is better in every row.`,
    '',
    `- Machine: ${info.cores} × ${info.cpu}, ${info.memoryGiB} GiB memory, ${info.os}`,
    `- Load average (1, 5, 15 min): ${la(loadBefore)} before, ${la(loadAfter)} after; the run took ${duration(elapsed)}`,
    `- Node ${info.node}; ${Object.entries(info.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    ...(info.postgres ? [`- Database server: ${info.postgres}`] : []),
    ...(info.mysql ? [`- Database server: ${info.mysql}`] : []),
    ...(info.mongo ? [`- Database server: ${info.mongo}`] : []),
    '- Stores: memory = each package\'s in-memory provider; SQLite file = evtstore\'s knex provider with sqlite3 (the original) against evtstore-rs/provider/sqlite `{ file }` (ours), each on its own copy of the same database file (tables made by evtstore\'s migrate); PostgreSQL = `provider/pg` of each package given the same kind of pg Pool (`new Pool({ connectionString, max: 10 })`, no TLS for either: node-postgres\'s default, which ours follows for a Pool); MariaDB = evtstore\'s provider/knex of each package on the same kind of knex instance (client mysql2, pool max 10): the drop-in form; Neo4j = `provider/neo4j` of each package given the same kind of neo4j-driver 5 Driver, the data in evtstore\'s shape (DateTime positions); MongoDB = evtstore-rs alone, `provider/mongo` `{ url }` on a database of its own per run, the data appended through that provider before timing (evtstore\'s MongoDB provider needs the server to fill in BSON Timestamps, which FerretDB does not do: it stores `Timestamp(0, 0)` and the original fails at the second append to a stream).',
    '',
    report.markdownTable(headers, rows),
    '',
    ...findings.map((f) => `- ${f}`),
    '',
    `Sizes: \`${JSON.stringify(z)}\`${Object.keys(opts.overrides).length ? ` (changed with --set: \`${JSON.stringify(opts.overrides)}\`)` : ''}. Scenarios are described in bench/README.md.`,
    '',
  ]
  return lines.join('\n')
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err)
  process.exit(1)
})
