'use strict'
// Every module evtstore 12.0.1 publishes (the list is read from its tarball,
// node_modules/evtstore) resolves in an application whose `evtstore` is this
// package: from CommonJS, from ESM (named imports of a CommonJS module) and
// from TypeScript under moduleResolution node10, node16 and bundler, with the
// same exported names (values and types) as the original's module.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { createRequire } = require('node:module')
const { spawnSync } = require('node:child_process')
const {
  ROOT,
  ORIGINAL,
  publishedModules,
  declaredExports,
  assignedExports,
  appFolder,
  compile,
  RESOLUTIONS,
} = require('./evtstore-modules')

const modules = publishedModules()
const expected = declaredExports(
  ORIGINAL,
  modules.map((m) => m.file.replace(/\.js$/, '.d.ts'))
)
/** @param {{ file: string }} m */
const exportsOf = (m) => /** @type {{ values: string[], types: string[] }} */ (expected.get(m.file.replace(/\.js$/, '.d.ts')))

/** The import paths of a module: with and without `.js` (the root also as `index`). */
function specifiers(/** @type {{ spec: string }} */ m) {
  return m.spec === '' ? ['evtstore', 'evtstore/index', 'evtstore/index.js'] : [`evtstore/${m.spec}`, `evtstore/${m.spec}.js`]
}

/** The original's module, or undefined when it needs a driver that is not installed (mongodb, neo4j-driver). */
function originalModule(/** @type {{ file: string }} */ m) {
  try {
    return require(path.join(ORIGINAL, m.file))
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') return undefined
    throw err
  }
}

const underRoot = (/** @type {string} */ f) =>
  f.startsWith(ROOT + path.sep) && !f.startsWith(path.join(ROOT, 'node_modules') + path.sep)

/** @type {{ dir: string, remove: () => void }} */
let app
before(() => {
  app = appFolder(ROOT, 'evtstore-rs-paths-')
})
after(() => app && app.remove())

test("the module list read from evtstore's tarball has its root, provider/* and src/* modules", () => {
  const specs = modules.map((m) => m.spec)
  // a floor, not the list: the list itself comes from the tarball
  for (const s of ['', 'provider/util', 'provider/error', 'provider/memory', 'src/types', 'src/domain-v2', 'src/create-aggregate']) {
    assert.ok(specs.includes(s), `${s || '(root)'} is among the published modules`)
  }
  assert.ok(modules.length >= 19, `${modules.length} modules`)
  // the value names of each .d.ts are the names its compiled .js assigns
  for (const m of modules) {
    assert.deepEqual(exportsOf(m).values, assignedExports(path.join(ORIGINAL, m.file)), m.file)
  }
})

test('CommonJS: every module path loads from this package with the same value names as evtstore', () => {
  const req = createRequire(path.join(app.dir, 'app.js'))
  for (const m of modules) {
    const { values } = exportsOf(m)
    const original = originalModule(m)
    for (const spec of specifiers(m)) {
      const file = req.resolve(spec)
      assert.ok(underRoot(file), `${spec} resolved to ${file}, not to this package`)
      const mod = req(spec)
      assert.deepEqual(Object.keys(mod).sort(), values, `${spec}: exported names`)
      for (const name of values) {
        const want = original ? typeof original[name] : 'function'
        assert.equal(typeof mod[name], want, `${spec}: ${name} is a ${want}`)
        if (original && typeof original[name] !== 'function') {
          assert.deepEqual(mod[name], original[name], `${spec}: ${name} has evtstore's value`)
        }
      }
    }
  }
})

test('ESM: named imports of every module path work and give the CommonJS values', () => {
  const lines = []
  const checks = []
  let i = 0
  for (const m of modules) {
    const { values } = exportsOf(m)
    for (const spec of specifiers(m)) {
      const ns = `ns${i}`
      const named = values.map((v) => `${v} as v${i}_${v}`)
      lines.push(`import * as ${ns} from '${spec}'`)
      if (named.length > 0) lines.push(`import { ${named.join(', ')} } from '${spec}'`)
      checks.push(
        `out.push({ spec: '${spec}', keys: Object.keys(${ns}).filter((k) => k !== 'default').sort(), ` +
          `same: [${values.map((v) => `v${i}_${v} === require('${spec}').${v}`).join(', ')}] })`
      )
      i++
    }
  }
  const program = [
    ...lines,
    "import { createRequire } from 'node:module'",
    'const require = createRequire(import.meta.url)',
    'const out = []',
    ...checks,
    'console.log(JSON.stringify(out))',
  ].join('\n')
  const file = path.join(app.dir, 'imports.mjs')
  fs.writeFileSync(file, program)
  const res = spawnSync(process.execPath, [file], { encoding: 'utf8', cwd: app.dir })
  assert.equal(res.status, 0, `node imports.mjs failed:\n${res.stderr}`)
  const out = JSON.parse(res.stdout)
  let j = 0
  for (const m of modules) {
    const { values } = exportsOf(m)
    for (const spec of specifiers(m)) {
      const row = out[j++]
      assert.equal(row.spec, spec)
      assert.deepEqual(row.keys, values, `${spec}: names seen by import *`)
      assert.deepEqual(row.same, values.map(() => true), `${spec}: named imports are the CommonJS values`)
    }
  }
})

/**
 * A TypeScript file importing every exported name of every module (types
 * with `import type`, values as values), through every import path.
 * @param {boolean} esm true: an ES module (.mts under node16)
 */
function importsProgram(esm) {
  const lines = ['// generated from the files of evtstore 12.0.1']
  let i = 0
  for (const m of modules) {
    const { values, types } = exportsOf(m)
    for (const spec of specifiers(m)) {
      if (types.length > 0) lines.push(`import type { ${types.map((t) => `${t} as T${i}_${t}`).join(', ')} } from '${spec}'`)
      if (values.length > 0) {
        lines.push(`import { ${values.map((v) => `${v} as v${i}_${v}`).join(', ')} } from '${spec}'`)
        lines.push(`export const used${i} = [${values.map((v) => `v${i}_${v}`).join(', ')}] as const`)
      }
      if (types.length === 0 && values.length === 0) lines.push(`import '${spec}'`)
      i++
    }
  }
  lines.push(esm ? 'export {}' : '')
  return lines.join('\n')
}

for (const resolution of Object.keys(RESOLUTIONS)) {
  test(`TypeScript (moduleResolution ${resolution}): every exported type and value of every module path resolves to this package`, { timeout: 120000 }, () => {
    fs.writeFileSync(path.join(app.dir, 'imports.ts'), importsProgram(false))
    const files = ['imports.ts']
    if (resolution === 'node16') {
      // an ES module under node16 resolves through the "import" conditions
      fs.writeFileSync(path.join(app.dir, 'imports-esm.mts'), importsProgram(true))
      files.push('imports-esm.mts')
    }
    const { errors, read } = compile(app.dir, files, /** @type {any} */ (resolution))
    assert.deepEqual(errors, [], `tsc (${resolution}) reported errors`)
    const ours = read.filter((f) => underRoot(f))
    for (const m of modules) {
      const dts = m.spec === '' ? 'index.d.ts' : m.spec.startsWith('src/') ? `compat/${m.spec}.d.ts` : `${m.spec}.d.ts`
      assert.ok(ours.includes(path.join(ROOT, dts)), `${m.spec || '(root)'}: ${dts} was not read (${resolution})`)
    }
    const original = read.filter((f) => f.startsWith(ORIGINAL + path.sep))
    assert.deepEqual(original, [], `some imports resolved to the original evtstore (${resolution})`)
  })
}

test('the files every module path resolves to are in what npm publishes (package.json "files")', { timeout: 60000 }, () => {
  const res = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8', cwd: ROOT })
  assert.equal(res.status, 0, `npm pack --dry-run failed:\n${res.stderr}`)
  const packed = new Set(JSON.parse(res.stdout)[0].files.map((/** @type {{ path: string }} */ f) => f.path))
  const req = createRequire(path.join(app.dir, 'app.js'))
  for (const m of modules) {
    for (const spec of specifiers(m)) {
      const js = path.relative(ROOT, req.resolve(spec)).split(path.sep).join('/')
      assert.ok(packed.has(js), `${spec} -> ${js} is not published`)
      const dts = js.replace(/\.js$/, '.d.ts')
      assert.ok(packed.has(dts), `${spec} -> ${dts} is not published`)
    }
  }
})
