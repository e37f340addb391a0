// evtstore's src/create-bookmark, backed by this package.
export { createBookmark } from '../../index'
