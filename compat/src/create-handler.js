'use strict'

// evtstore's src/create-handler, backed by this package.
const { createHandler } = require('../../index')

module.exports = { createHandler }
