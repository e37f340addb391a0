'use strict'
// Programs that compile against evtstore 12.0.1 compile against this package:
// each program is compiled twice, in an application whose `evtstore` is the
// original and in one whose `evtstore` is this package, and every error ours
// reports that the original does not is a failure. The programs are our own,
// in the patterns applications use (__test__/types/lenient), plus the code
// blocks of evtstore's README and docs, read from its tarball.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, ORIGINAL, appFolder, compile } = require('./evtstore-modules')

const PROGRAMS = path.join(__dirname, 'types', 'lenient')

/** @type {Record<'original' | 'ours', { dir: string, remove: () => void }>} */
const apps = /** @type {any} */ ({})
before(() => {
  apps.original = appFolder(ORIGINAL, 'evtstore-lenient-original-')
  apps.ours = appFolder(ROOT, 'evtstore-lenient-ours-')
})
after(() => {
  for (const app of Object.values(apps)) app.remove()
})

/**
 * Writes `files` ({ name: source }) into both applications, compiles them and
 * returns each side's errors (one string each, "file(line,col): error TS...").
 * @param {Record<string, string>} files
 */
function compileBoth(files) {
  /** @type {Record<string, string[]>} */
  const out = {}
  for (const [side, app] of Object.entries(apps)) {
    for (const [name, source] of Object.entries(files)) fs.writeFileSync(path.join(app.dir, name), source)
    // the library's own .d.ts files are checked by types.test.js; here only the programs count
    out[side] = compile(app.dir, Object.keys(files), 'node10', { skipLibCheck: true, esModuleInterop: true }).errors
  }
  return /** @type {{ original: string[], ours: string[] }} */ (out)
}

/** The errors of `ours` that `original` does not have (same file, position and code). */
function extra(/** @type {string[]} */ ours, /** @type {string[]} */ original) {
  const key = (/** @type {string} */ e) => (e.match(/^(.*?\(\d+,\d+\): error TS\d+)/) || [e])[0]
  const theirs = new Set(original.map(key))
  return ours.filter((e) => !theirs.has(key(e)))
}

test('our application-pattern programs compile against evtstore 12.0.1 and against this package', { timeout: 120000 }, () => {
  const names = fs.readdirSync(PROGRAMS).filter((f) => f.endsWith('.ts'))
  assert.ok(names.length >= 5, `${names.length} programs in ${PROGRAMS}`)
  /** @type {Record<string, string>} */
  const files = {}
  for (const name of names) files[name] = fs.readFileSync(path.join(PROGRAMS, name), 'utf8')
  const { original, ours } = compileBoth(files)
  // each program is a valid evtstore program: otherwise the comparison says nothing
  assert.deepEqual(original, [], 'a program does not compile against evtstore 12.0.1 itself')
  assert.deepEqual(extra(ours, original), [], 'errors on this package that evtstore does not report')
})

/** The ```ts blocks of a markdown text. */
function codeBlocks(/** @type {string} */ markdown) {
  return [...markdown.matchAll(/```(?:ts|typescript)\n([\s\S]*?)```/g)].map((m) => m[1])
}

test("the code blocks of evtstore's README and docs get no error on this package that evtstore does not give", { timeout: 120000 }, (t) => {
  const docs = ['README.md', ...fs.readdirSync(path.join(ORIGINAL, 'docs')).map((f) => `docs/${f}`)].filter((f) =>
    f.endsWith('.md')
  )
  // the names a snippet uses without importing them: the root API and the memory provider
  const root = require(ROOT)
  const header =
    `import { ${Object.keys(root).join(', ')} } from 'evtstore'\n` +
    "import { createProvider } from 'evtstore/provider/memory'\n" +
    'export {}\n'
  /** @type {Record<string, string>} */
  const files = {}
  for (const doc of docs) {
    codeBlocks(fs.readFileSync(path.join(ORIGINAL, doc), 'utf8')).forEach((block, i) => {
      files[`${doc.replace(/[/.]/g, '_')}_${i}.ts`] = header + block
    })
  }
  assert.ok(Object.keys(files).length >= 10, `${Object.keys(files).length} code blocks`)
  const { original, ours } = compileBoth(files)
  // blocks that are not valid TypeScript (evtstore's README elides bodies with `...`) give the same syntax errors on both sides
  const syntax = new Set(original.filter((e) => /error TS1\d{3}:/.test(e)).map((e) => e.split('(')[0]))
  t.diagnostic(`${Object.keys(files).length} blocks, ${syntax.size} with syntax errors (compared on those errors only)`)
  assert.deepEqual(extra(ours, original), [], 'errors on this package that evtstore does not report')
})
