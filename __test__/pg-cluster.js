'use strict'
// A throw-away PostgreSQL cluster of its own for a test that stops and
// restarts the server (faults.test.js), so the shared server of
// EVTSTORE_TEST_PG_URL is never disturbed. It is started and stopped by
// scripts/postgres.sh (the one way this project starts PostgreSQL) with
// another PGPORT and an EVTSTORE_PG_DIR under os.tmpdir(); destroy() stops it
// and removes its directory. Clusters left behind by test processes that no
// longer run (killed runs) are stopped and removed by the next createCluster().
const { execFile, execFileSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const SCRIPT = path.join(__dirname, '..', 'scripts', 'postgres.sh')
const PREFIX = 'evtstore-rs-faults-pg-'
const FIRST_PORT = 55440
const LAST_PORT = 55499

/** Runs `scripts/postgres.sh <command> [arg]` for the cluster in `dir` on `port`; resolves with its stdout. */
function script(command, { port, dir }, arg) {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [SCRIPT, command, ...(arg ? [arg] : [])],
      { env: { ...process.env, PGPORT: String(port), EVTSTORE_PG_DIR: dir }, timeout: 180000 },
      (err, stdout, stderr) => {
        if (err) {
          err.message += `\nscripts/postgres.sh ${command} (PGPORT=${port} EVTSTORE_PG_DIR=${dir}):\n${stderr}`
          reject(err)
        } else {
          resolve(stdout.trim())
        }
      }
    )
  })
}

function scriptSync(command, { port, dir }) {
  try {
    execFileSync('bash', [SCRIPT, command], {
      env: { ...process.env, PGPORT: String(port), EVTSTORE_PG_DIR: dir },
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

async function freePort() {
  const span = LAST_PORT - FIRST_PORT + 1
  const offset = process.pid % span
  for (let i = 0; i < span; i++) {
    const port = FIRST_PORT + ((offset + i) % span)
    if (await portFree(port)) return port
  }
  throw new Error(`no free port from ${FIRST_PORT} to ${LAST_PORT} for a throw-away PostgreSQL cluster`)
}

function alive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/** Stops and removes the clusters of test processes that no longer run. */
async function sweep() {
  let names = []
  try {
    names = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(PREFIX))
  } catch {
    return
  }
  for (const name of names) {
    const pid = Number(name.slice(PREFIX.length).split('-')[0])
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue
    const dir = path.join(os.tmpdir(), name)
    await script('stop', { port: 0, dir }).catch(() => {})
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Initialises and starts a cluster (a few seconds).
 * @returns {Promise<{ url: string, port: number, dir: string, stop(): Promise<void>, start(): Promise<void>, destroy(): Promise<void> }>}
 */
async function createCluster() {
  await sweep()
  const port = await freePort()
  // not created here: the script creates it and hands it to the server's user
  const dir = path.join(os.tmpdir(), `${PREFIX}${process.pid}-${crypto.randomBytes(3).toString('hex')}`)
  const where = { port, dir }
  let destroyed = false
  // a test process that ends without its after() hooks still stops its cluster
  const onExit = () => {
    if (destroyed) return
    scriptSync('stop', where)
    fs.rmSync(dir, { recursive: true, force: true })
  }
  process.on('exit', onExit)
  let url
  try {
    url = await script('start', where)
  } catch (err) {
    destroyed = true
    process.off('exit', onExit)
    await script('stop', where).catch(() => {})
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
      await script('stop', where, mode)
    },
    /** Starts it again; resolves once it accepts connections. */
    async start() {
      await script('start', where)
    },
    async destroy() {
      if (destroyed) return
      destroyed = true
      process.off('exit', onExit)
      await script('stop', where).catch(() => {})
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

module.exports = { createCluster }
