// SPDX-License-Identifier: Apache-2.0
// Three projects: unit (pure, fast), integration (real sockets and processes), interop (real virsh/python/C clients).
const tsJest = ['ts-jest', { diagnostics: false }];
const project = (name, extra = {}) => ({
  displayName: name,
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  ...extra,
});
module.exports = {
  projects: [project('unit'), project('integration'), project('interop')],
  testTimeout: 60000,
};
