'use strict'
// Where the package under test lives. The suite imports the package the way a
// user does: the package root and its provider/* entry points.
//
// EVTSTORE_TEST_ROOT may point at another implementation with the same layout
// (for example node_modules/evtstore, the original) to see which behaviours it
// lacks; by default the package in this repository is tested.
const path = require('node:path')

const ROOT = process.env.EVTSTORE_TEST_ROOT
  ? path.resolve(process.env.EVTSTORE_TEST_ROOT)
  : path.resolve(__dirname, '..')

let rootModule
function root() {
  if (!rootModule) rootModule = require(ROOT)
  return rootModule
}

function provider(name) {
  return require(path.join(ROOT, 'provider', name))
}

module.exports = { ROOT, root, provider }
