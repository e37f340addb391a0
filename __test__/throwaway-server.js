'use strict'
// A throw-away database server of its own (PostgreSQL or MariaDB) for a test
// that stops and restarts the server (faults.test.js), so the shared servers
// of EVTSTORE_TEST_PG_URL and EVTSTORE_TEST_MYSQL_URL are never disturbed. It
// is started and stopped by the project's own script (scripts/postgres.sh,
// scripts/mariadb.sh) with another port and a directory under os.tmpdir();
// destroy() stops it and removes its directory. Servers left behind by test
// processes that no longer run (killed runs) are stopped and removed by the
// next createCluster() of their kind.
const { execFile, execFileSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

/** Per kind: its script, the variables that place a server, its ports and directory prefix. */
const KINDS = {
  postgres: {
    script: path.join(__dirname, '..', 'scripts', 'postgres.sh'),
    env: (/** @type {{ port: number, dir: string }} */ w) => ({ PGPORT: String(w.port), EVTSTORE_PG_DIR: w.dir }),
    prefix: 'evtstore-rs-faults-pg-',
    ports: [55440, 55499],
  },
  mysql: {
    script: path.join(__dirname, '..', 'scripts', 'mariadb.sh'),
    env: (/** @type {{ port: number, dir: string }} */ w) => ({ EVTSTORE_MYSQL_PORT: String(w.port), EVTSTORE_MYSQL_DIR: w.dir }),
    prefix: 'evtstore-rs-faults-mysql-',
    ports: [53340, 53399],
  },
}

/** Runs the kind's `<script> <command> [arg]` for the server in `dir` on `port`; resolves with its stdout. */
function script(kind, command, { port, dir }, arg) {
  const k = KINDS[kind]
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [k.script, command, ...(arg ? [arg] : [])],
      { env: { ...process.env, ...k.env({ port, dir }) }, timeout: 180000 },
      (err, stdout, stderr) => {
        if (err) {
          err.message += `\n${path.basename(k.script)} ${command} (${JSON.stringify(k.env({ port, dir }))}):\n${stderr}`
          reject(err)
        } else {
          resolve(stdout.trim())
        }
      }
    )
  })
}

function scriptSync(kind, command, { port, dir }) {
  const k = KINDS[kind]
  try {
    execFileSync('bash', [k.script, command], {
      env: { ...process.env, ...k.env({ port, dir }) },
      stdio: 'ignore',
      timeout: 60000,
    })
  } catch {
    /* best effort */
  }
}

/** Whether nothing listens on 127.0.0.1:port. */
function portFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

async function freePort(kind) {
  const [first, last] = KINDS[kind].ports
  const span = last - first + 1
  const offset = process.pid % span
  for (let i = 0; i < span; i++) {
    const port = first + ((offset + i) % span)
    if (await portFree(port)) return port
  }
  throw new Error(`no free port from ${first} to ${last} for a throw-away ${kind} server`)
}

function alive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/** Stops and removes the servers of this kind of test processes that no longer run. */
async function sweep(kind) {
  const prefix = KINDS[kind].prefix
  let names = []
  try {
    names = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(prefix))
  } catch {
    return
  }
  for (const name of names) {
    const pid = Number(name.slice(prefix.length).split('-')[0])
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue
    const dir = path.join(os.tmpdir(), name)
    await script(kind, 'stop', { port: 0, dir }).catch(() => {})
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Initialises and starts a server of `kind` ('postgres' or 'mysql'; a few seconds).
 * @returns {Promise<{ url: string, port: number, dir: string, stop(): Promise<void>, start(): Promise<void>, destroy(): Promise<void> }>}
 */
async function createCluster(kind = 'postgres') {
  await sweep(kind)
  const port = await freePort(kind)
  // not created here: the script creates it and hands it to the server's user
  const dir = path.join(os.tmpdir(), `${KINDS[kind].prefix}${process.pid}-${crypto.randomBytes(3).toString('hex')}`)
  const where = { port, dir }
  let destroyed = false
  // a test process that ends without its after() hooks still stops its cluster
  const onExit = () => {
    if (destroyed) return
    scriptSync(kind, 'stop', where)
    fs.rmSync(dir, { recursive: true, force: true })
  }
  process.on('exit', onExit)
  let url
  try {
    url = await script(kind, 'start', where)
  } catch (err) {
    destroyed = true
    process.off('exit', onExit)
    await script(kind, 'stop', where).catch(() => {})
    fs.rmSync(dir, { recursive: true, force: true })
    throw err
  }
  return {
    url,
    port,
    dir,
    /**
     * Stops the server: 'fast' (the default) ends the sessions and rolls back
     * open transactions; 'immediate' kills it as a crash would.
     * @param {'fast' | 'immediate'} [mode]
     */
    async stop(mode = 'fast') {
      await script(kind, 'stop', where, mode)
    },
    /** Starts it again; resolves once it accepts connections. */
    async start() {
      await script(kind, 'start', where)
    },
    async destroy() {
      if (destroyed) return
      destroyed = true
      process.off('exit', onExit)
      await script(kind, 'stop', where).catch(() => {})
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

module.exports = { createCluster }
