'use strict'

// Statistics, machine facts and the results table (console and Markdown).

const os = require('os')
const fs = require('fs')
const path = require('path')
const { execFileSync } = require('child_process')

/** @param {number[]} xs */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** @param {number[]} xs */
function stats(xs) {
  if (xs.length === 0) return undefined
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length }
}

/** @param {number} v */
function num(v) {
  if (!Number.isFinite(v)) return String(v)
  const a = Math.abs(v)
  if (a >= 1000) return Math.round(v).toLocaleString('en-US')
  if (a >= 100) return v.toFixed(0)
  if (a >= 10) return v.toFixed(1)
  if (a >= 1) return v.toFixed(2)
  return v.toFixed(3)
}

/**
 * @param {ReturnType<typeof stats>} s
 * @param {string} unit
 */
function cell(s, unit) {
  if (!s) return 'n/a'
  if (s.n === 1) return `${num(s.median)} ${unit}`
  return `${num(s.median)} ${unit} (${num(s.min)}–${num(s.max)})`
}

/** @param {number} r */
function ratio(r) {
  if (!Number.isFinite(r)) return 'n/a'
  if (r >= 100) return `${r.toFixed(0)}×`
  if (r >= 10) return `${r.toFixed(1)}×`
  return `${r.toFixed(2)}×`
}

/** @param {string} dir */
function pkgVersion(dir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version
  } catch {
    return 'not installed'
  }
}

/** @param {string} root */
function gitRevision(root) {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' }).trim()
    return dirty ? `${rev} + local changes` : rev
  } catch {
    return 'unknown'
  }
}

/** @param {string} root */
function machine(root) {
  const cpus = os.cpus()
  const nm = (/** @type {string} */ name) => path.join(__dirname, '..', 'node_modules', name)
  return {
    cpu: cpus.length ? cpus[0].model.trim() : 'unknown',
    cores: cpus.length,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    versions: {
      'evtstore-rs': `${pkgVersion(root)} (${gitRevision(root)})`,
      evtstore: pkgVersion(nm('evtstore')),
      knex: pkgVersion(nm('knex')),
      sqlite3: pkgVersion(nm('sqlite3')),
      pg: pkgVersion(nm('pg')),
      postgres: pkgVersion(nm('postgres')),
    },
  }
}

/** @param {string[]} headers @param {string[][]} rows */
function markdownTable(headers, rows) {
  const esc = (/** @type {string} */ s) => String(s).replace(/\|/g, '\\|')
  const lines = [`| ${headers.map(esc).join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`]
  for (const r of rows) lines.push(`| ${r.map(esc).join(' | ')} |`)
  return lines.join('\n')
}

/** @param {string[]} headers @param {string[][]} rows */
function consoleTable(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const line = (/** @type {string[]} */ r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ')
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

module.exports = { median, stats, num, cell, ratio, machine, markdownTable, consoleTable }
