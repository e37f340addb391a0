#!/usr/bin/env node
'use strict'
// npx evtstore-rs status <url> [--events <table>] [--bookmarks <table>] [--json]
//
// Prints every bookmark of a store with its position, lag and lease (owner,
// fencing token, expiry): which instance runs which handler, and how far
// behind it is. <url>: postgres://, mysql://, mongodb://, bolt:// or
// neo4j://, or an SQLite file (a path, or sqlite:<path>).
const path = require('path')

const USAGE = `usage: npx evtstore-rs status <url> [--events <name>] [--bookmarks <name>] [--json]
  <url>  postgres://user:password@host:port/database
         mysql://user:password@host:port/database
         mongodb://host:port/database
         bolt://host:port or neo4j://host:port (user and password in the url)
         an SQLite file: ./events.db or sqlite:./events.db
`

/** @param {string} url */
function providerFor(url, /** @type {{ events?: string, bookmarks?: string }} */ names) {
  const provider = (/** @type {string} */ name) => require(path.join(__dirname, '..', 'provider', name))
  const scheme = /^([a-z][a-z0-9+]*):\/\//i.exec(url)
  const kind = scheme ? scheme[1].toLowerCase() : 'sqlite'
  if (kind === 'postgres' || kind === 'postgresql') return provider('postgres').createProvider({ url, ...names })
  if (kind === 'mysql' || kind === 'mariadb') return provider('mysql').createProvider({ url, ...names })
  if (kind === 'mongodb' || kind === 'mongodb+srv') return provider('mongo').createProvider({ url, ...names })
  if (kind === 'bolt' || kind === 'neo4j' || kind === 'bolt+s' || kind === 'neo4j+s') return provider('neo4j').createProvider({ url, ...names })
  if (kind === 'sqlite') return provider('sqlite').createProvider({ file: url.replace(/^sqlite:/, ''), ...names })
  throw new Error(`unknown kind of url "${kind}://": ${USAGE}`)
}

async function main(argv) {
  const [command, url, ...rest] = argv
  if (command !== 'status' || !url) {
    process.stderr.write(USAGE)
    return 2
  }
  /** @type {{ events?: string, bookmarks?: string }} */
  const names = {}
  let json = false
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--json') json = true
    else if (rest[i] === '--events' || rest[i] === '--bookmarks') names[/** @type {'events' | 'bookmarks'} */ (rest[i].slice(2))] = rest[++i]
    else {
      process.stderr.write(`unknown option ${rest[i]}\n${USAGE}`)
      return 2
    }
  }
  const provider = providerFor(url, names)
  try {
    const rows = await provider.status()
    if (json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n')
    else process.stdout.write(require('../lib/status').formatStatus(rows))
    return 0
  } finally {
    await provider.close()
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err) => {
    process.stderr.write(`evtstore-rs status: ${err && err.message ? err.message : err}\n`)
    process.exitCode = 1
  }
)
