// Jest runs the TypeScript sources as native ES modules (Node's --experimental-vm-modules, set in
// package.json), transformed by SWC without type checking; `npm run typecheck` does the checking.
/** @type {import('jest').Config} */
export default {
  // Node's environment, printing the fault seeds of a failed test's embedded API servers.
  testEnvironment: '<rootDir>/test/support/environment.ts',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'typescript' }, target: 'es2024' }, module: { type: 'es6' } },
    ],
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // Says whether the suites against a real kube-apiserver run (test/support/cluster.ts onRealServer).
  globalSetup: '<rootDir>/test/support/report-servers.ts',
  // Integration and end-to-end tests run real servers and processes; a test's own deadlines are shorter.
  testTimeout: 60_000,
  // A failed test can leave a child process or a socket behind its cleanup; the run must still end (and
  // the control plane's exit hook then kills etcd and kube-apiserver) rather than wait for CI's limit.
  forceExit: true,
};
