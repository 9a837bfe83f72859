/** One jest run covers every workspace package; packages are mapped to their TypeScript sources. */
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/tools'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  moduleNameMapper: {
    '^@effdet/testing$': '<rootDir>/tools/testing/src/index.ts',
    '^@effdet/cli$': '<rootDir>/tools/cli/src/index.ts',
    '^@effdet/([a-z0-9-]+)/node$': '<rootDir>/packages/$1/src/node.ts',
    '^@effdet/([a-z0-9-]+)$': '<rootDir>/packages/$1/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: { '^.+\\.ts$': swc },
  setupFiles: ['<rootDir>/tools/testing/src/setup.ts'],
  setupFilesAfterEnv: ['<rootDir>/tools/testing/src/setup-after-env.ts'],
  testTimeout: 300000,
  reporters: ['default', '<rootDir>/tools/testing/summary-reporter.cjs'],
};
