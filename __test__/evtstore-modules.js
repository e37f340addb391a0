'use strict'
// What evtstore 12.0.1 publishes, read from its installed tarball
// (node_modules/evtstore, a dev dependency), and throw-away "application"
// folders in which `evtstore` is this package (as the one-line alias
// "evtstore": "npm:evtstore-rs@..." makes it) or the original.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const ts = require('typescript')

const ROOT = path.resolve(__dirname, '..')
const ORIGINAL = path.dirname(require.resolve('evtstore/package.json', { paths: [ROOT] }))

/** The files of the tarball: its package.json "files" when it has one, else every file (npm's default). */
function publishedFiles() {
  const pkg = JSON.parse(fs.readFileSync(path.join(ORIGINAL, 'package.json'), 'utf8'))
  /** @type {string[]} */
  const all = []
  ;(function walk(dir) {
    for (const entry of fs.readdirSync(path.join(ORIGINAL, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${entry.name}` : entry.name
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(rel)
      } else all.push(rel)
    }
  })('')
  if (!Array.isArray(pkg.files)) return all
  return all.filter((f) => f === 'package.json' || pkg.files.some((p) => f === p || f.startsWith(p.replace(/\/?$/, '/'))))
}

/**
 * Every module of the tarball: a compiled `.js` file. `spec` is its import
 * path after the package name ('' for the root, 'src/types', ...).
 * @returns {{ file: string, spec: string }[]}
 */
function publishedModules() {
  return publishedFiles()
    .filter((f) => f.endsWith('.js'))
    .sort()
    .map((file) => ({ file, spec: file === 'index.js' ? '' : file.slice(0, -'.js'.length) }))
}

/**
 * The names each module's .d.ts exports, split into values (functions,
 * classes, constants: what `require` returns) and types (everything a
 * TypeScript `import type` can name, classes included).
 * @param {string} dir a package folder with the same layout
 * @param {string[]} dtsFiles paths relative to dir
 * @returns {Map<string, { values: string[], types: string[] }>}
 */
function declaredExports(dir, dtsFiles) {
  const roots = dtsFiles.map((f) => path.join(dir, f))
  const program = ts.createProgram(roots, { noEmit: true, skipLibCheck: true, types: [] })
  const checker = program.getTypeChecker()
  const out = new Map()
  for (const f of dtsFiles) {
    const sf = program.getSourceFile(path.join(dir, f))
    if (!sf) throw new Error(`${f} was not read by TypeScript`)
    const mod = checker.getSymbolAtLocation(sf)
    const values = []
    const types = []
    for (const sym of mod ? checker.getExportsOfModule(mod) : []) {
      const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym
      if (target.flags & ts.SymbolFlags.Value) values.push(sym.name)
      if (target.flags & (ts.SymbolFlags.Type | ts.SymbolFlags.Class)) types.push(sym.name)
    }
    out.set(f, { values: values.sort(), types: types.sort() })
  }
  return out
}

/** The names a compiled CommonJS module assigns to `exports.<name>` (tsc's output). */
function assignedExports(jsFile) {
  const text = fs.readFileSync(jsFile, 'utf8')
  const names = new Set()
  for (const m of text.matchAll(/\bexports\.([A-Za-z_$][\w$]*)\s*=/g)) names.add(m[1])
  return [...names].sort()
}

/**
 * A throw-away application folder whose node_modules/evtstore is `pkgDir`
 * (a symlink), plus node_modules/@types/node. Removed by the returned
 * `remove()`. The drivers knex and postgres are linked beside it.
 * @param {string} pkgDir
 * @param {string} prefix
 */
function appFolder(pkgDir, prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true })
  fs.symlinkSync(pkgDir, path.join(dir, 'node_modules', 'evtstore'), 'dir')
  fs.symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'), 'dir')
  // drivers with their own typings, for programs that configure a provider with them
  for (const driver of ['knex', 'postgres']) {
    fs.symlinkSync(path.join(ROOT, 'node_modules', driver), path.join(dir, 'node_modules', driver), 'dir')
  }
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

const RESOLUTIONS = {
  node10: { module: 'commonjs', moduleResolution: 'node10' },
  node16: { module: 'node16', moduleResolution: 'node16' },
  bundler: { module: 'esnext', moduleResolution: 'bundler' },
}

/**
 * Runs tsc on `files` of `dir` under one module resolution and returns the
 * errors (one string per error) and the files it read.
 * @param {string} dir
 * @param {string[]} files
 * @param {keyof typeof RESOLUTIONS} resolution
 * @param {object} [extra] more compiler options
 */
function compile(dir, files, resolution, extra = {}) {
  const config = {
    compilerOptions: {
      strict: true,
      noEmit: true,
      target: 'es2020',
      lib: ['es2020'],
      types: ['node'],
      skipLibCheck: false,
      ...RESOLUTIONS[resolution],
      ...extra,
    },
    files,
  }
  const project = path.join(dir, `tsconfig.${resolution}.json`)
  fs.writeFileSync(project, JSON.stringify(config, null, 2))
  const tsc = require.resolve('typescript/bin/tsc', { paths: [ROOT] })
  const res = spawnSync(process.execPath, [tsc, '-p', project, '--listFiles', '--pretty', 'false'], {
    encoding: 'utf8',
    cwd: dir,
  })
  const lines = `${res.stdout}\n${res.stderr}`.split('\n')
  const errors = []
  for (const line of lines) {
    if (/error TS\d+/.test(line)) errors.push(line.trim())
    else if (errors.length > 0 && /^\s+/.test(line) && line.trim()) errors[errors.length - 1] += `\n${line}`
  }
  if (res.status !== 0 && errors.length === 0) errors.push(`tsc exited with ${res.status}: ${res.stderr || res.stdout}`)
  const read = lines.map((l) => l.trim()).filter((l) => /\.(d\.)?[cm]?ts$/.test(l))
  return { errors, read }
}

module.exports = {
  ROOT,
  ORIGINAL,
  publishedFiles,
  publishedModules,
  declaredExports,
  assignedExports,
  appFolder,
  compile,
  RESOLUTIONS,
}
