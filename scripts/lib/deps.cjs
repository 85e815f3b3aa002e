'use strict';
// Is node_modules what package-lock.json asks for? Plain CommonJS with Node
// built-ins only (it runs before `npm install`); used by scripts/bootstrap.mjs
// and tested by spec/tooling.spec.ts. Types: ./deps.d.cts
//
// The signal is content, not mtimes: npm records what it installed in
// node_modules/.package-lock.json (the "hidden lockfile"), so node_modules is
// current when every package of package-lock.json is there at its version, and
// the lock is current when its root entry has package.json's dependency ranges.
// Editing package.json's scripts or touching a file changes neither.

const fs = require('node:fs');
const path = require('node:path');

const DEP_FIELDS = ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies'];
/** The binaries the tooling runs by path (scripts/test.mjs) or by name (`node --import tsx`). */
const REQUIRED_BINS = ['tsc', 'jest', 'tsx'];

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') return null;
    throw new Error(`${file}: ${e.message}`);
  }
}

function sameRanges(a = {}, b = {}) {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/**
 * What has to happen for node_modules to match the project:
 *   null                                 nothing;
 *   { action: 'install', reason }        package-lock.json is missing or does not list
 *                                        package.json's dependencies: `npm install` (writes the lock);
 *   { action: 'ci', reason }             node_modules differs from the lock: `npm ci`.
 * Optional packages absent from node_modules are fine (npm skips the other platforms' binaries).
 */
function depsPlan(root) {
  const pkg = readJson(path.join(root, 'package.json'));
  if (!pkg) throw new Error(`no package.json in ${root}`);
  const lock = readJson(path.join(root, 'package-lock.json'));
  if (!lock || !lock.packages || !lock.packages['']) {
    return { action: 'install', reason: lock ? 'package-lock.json has no "packages" (lockfileVersion < 2)' : 'package-lock.json is missing' };
  }
  for (const field of DEP_FIELDS) {
    if (!sameRanges(pkg[field], lock.packages[''][field])) {
      return { action: 'install', reason: `package.json ${field} differ from package-lock.json` };
    }
  }
  const hidden = readJson(path.join(root, 'node_modules', '.package-lock.json'));
  if (!hidden || !hidden.packages) return { action: 'ci', reason: 'node_modules/.package-lock.json is missing' };
  for (const [where, want] of Object.entries(lock.packages)) {
    if (where === '') continue;
    const have = hidden.packages[where];
    if (!have) {
      if (want.optional) continue;
      return { action: 'ci', reason: `${where} is not installed` };
    }
    if (have.version !== want.version) return { action: 'ci', reason: `${where} is ${have.version}, package-lock.json says ${want.version}` };
  }
  for (const bin of REQUIRED_BINS) {
    if (!fs.existsSync(path.join(root, 'node_modules', '.bin', bin))) return { action: 'ci', reason: `node_modules/.bin/${bin} is missing` };
  }
  return null;
}

module.exports = { depsPlan, REQUIRED_BINS };
