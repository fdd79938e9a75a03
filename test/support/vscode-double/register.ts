/**
 * Mocha `require` hook: makes `require('vscode')` load the test double, so the
 * extension's compiled code runs under plain Node. Only the bare name is redirected.
 */
import Module = require('module');

const doublePath = require.resolve('./index');
const moduleWithResolver = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
const resolveFilename = moduleWithResolver._resolveFilename;

moduleWithResolver._resolveFilename = function (request: string, ...rest: unknown[]): string {
  return request === 'vscode' ? doublePath : resolveFilename.call(this, request, ...rest);
};
