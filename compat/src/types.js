'use strict'

// evtstore's src/types holds only types (see types.d.ts): the module loads and exports no value.
module.exports = {}
