'use strict'

// evtstore's src/create-command, backed by this package.
const { createCommands } = require('../../index')

module.exports = { createCommands }
