// evtstore's src/create-handler, backed by this package.
export { createHandler } from '../../index'
