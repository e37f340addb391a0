'use strict'

const { createAggregate, createProvidedAggregate, createPersistedAggregate } = require('./lib/aggregate')
const { createDomainV2, createDomain, createDomainV1 } = require('./lib/domain')
const { createCommands } = require('./lib/commands')
const { createHandler } = require('./lib/handler')
const { createBookmark } = require('./lib/bookmark')
const { MemoryBookmark } = require('./lib/util')
const { CommandError, VersionError } = require('./lib/errors')

module.exports = {
  createAggregate,
  createDomainV2,
  createDomain,
  createDomainV1,
  createCommands,
  createHandler,
  createBookmark,
  createProvidedAggregate,
  createPersistedAggregate,
  MemoryBookmark,
  CommandError,
  VersionError,
}
