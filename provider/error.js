'use strict'

// evtstore ships its error classes at this path too; code that imports them from here keeps working.
const { CommandError, VersionError } = require('../lib/errors')

module.exports = { CommandError, VersionError }
