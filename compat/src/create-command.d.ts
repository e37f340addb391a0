// evtstore's src/create-command, backed by this package.
export { createCommands } from '../../index'
