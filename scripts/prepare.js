#!/usr/bin/env node
'use strict'
// The repository's `prepare` script: a contributor's `npm install` (or
// `npm ci`) builds the addon from the Rust source with `npm run build`, as
// they may have changed it. npm also runs `prepare` before `npm pack` and
// `npm publish`, where nothing is built: the package ships the source, and
// the binaries travel in the platform packages (npm/<platform>/).
// It never runs in a user's install from the registry.

const { spawnSync } = require('child_process')
const path = require('path')

if (['pack', 'publish'].includes(process.env.npm_command || '')) process.exit(0)

const npm = process.env.npm_execpath
const root = path.join(__dirname, '..')
const run = npm
  ? spawnSync(process.execPath, [npm, 'run', 'build'], { cwd: root, stdio: 'inherit' })
  : spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit', shell: true })
process.exit(run.status === null ? 1 : run.status)
