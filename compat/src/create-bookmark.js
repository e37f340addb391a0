'use strict'

// evtstore's src/create-bookmark, backed by this package.
const { createBookmark } = require('../../index')

module.exports = { createBookmark }
