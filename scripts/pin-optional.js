#!/usr/bin/env node
'use strict'
// Part of the `version` script (npm version): after `napi version` set the
// version of every npm/<platform>/package.json, this pins the platform
// packages in package.json's optionalDependencies to that same version, as
// `napi pre-publish` does again when publishing. __test__/packaging.test.js
// checks that they agree.
const fs = require('fs')
const path = require('path')

const file = path.join(__dirname, '..', 'package.json')
const pkg = JSON.parse(fs.readFileSync(file, 'utf8'))
for (const name of Object.keys(pkg.optionalDependencies || {})) {
  if (name.startsWith(`${pkg.napi.packageName}-`)) pkg.optionalDependencies[name] = pkg.version
}
fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n')
