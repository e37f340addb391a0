'use strict'
// The names of the events and bookmarks tables, checked where the user gives
// them (every engine takes the same names): a refused name never reaches a
// database.

const { codedError } = require('../errors')
const { describe } = require('../util')

const SAFE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/**
 * @param {any} name
 * @param {string} what 'events' or 'bookmarks'
 * @returns {string}
 */
function tableName(name, what) {
  if (typeof name !== 'string' || !SAFE_NAME.test(name)) {
    throw codedError(
      'INVALID_NAME',
      `${what} table name ${describe(name)} is not allowed: use letters, digits and _ ` +
        '(not starting with a digit, at most 63 characters)',
      TypeError
    )
  }
  return name
}

/**
 * The table names of a provider's options, 'events' and 'bookmarks' when not given.
 * @param {{ events?: any, bookmarks?: any }} opts
 * @returns {Tables}
 */
function readTables(opts) {
  return {
    events: tableName(opts.events === undefined ? 'events' : opts.events, 'events'),
    bookmarks: tableName(opts.bookmarks === undefined ? 'bookmarks' : opts.bookmarks, 'bookmarks'),
  }
}

/** @typedef {{ events: string, bookmarks: string }} Tables */

module.exports = { tableName, readTables, SAFE_NAME }
