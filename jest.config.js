// Jest config (CommonJS). Run through `npm test` (scripts/test.mjs), which
// type-checks once with tsc and provides REDIS_URL.
'use strict';

/** ts-jest in transpile-only mode: type errors are tsc's job, not the test run's. */
const tsJest = [
  'ts-jest',
  {
    tsconfig: {
      isolatedModules: true, // => ts.transpileModule, no per-file type checking
      allowJs: true, // for the ESM-only packages below
      sourceMap: true,
    },
  },
];

// ESM-only packages that Jest's CommonJS runtime cannot require(): transform them
// to CommonJS with ts-jest (Node itself can require(esm), Jest's module system can't).
const esmOnly = ['uuid'];

/** @type {import('jest').Config} */
module.exports = {
  rootDir: __dirname,
  testEnvironment: 'node',
  testMatch: ['<rootDir>/spec/**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/dist/', '<rootDir>/.keyflow/'],
  modulePathIgnorePatterns: ['<rootDir>/dist/', '<rootDir>/.keyflow/'],
  transform: {
    '^.+\\.(ts|js|mjs)$': tsJest,
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json', 'node'],
  testTimeout: 60000,
  maxWorkers: 2,
};
