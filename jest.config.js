// SPDX-License-Identifier: Apache-2.0
// Four projects: unit (pure, fast), integration (real sockets and processes), interop (real virsh/python/C clients),
// load (the abuse attacks of bench row 7 at a small size: memory and other clients' latency stay bounded).
const tsJest = ['ts-jest', { diagnostics: false }];
const project = (name, extra = {}) => ({
  displayName: name,
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  ...extra,
});
module.exports = {
  projects: [project('unit'), project('integration'), project('interop'), project('load')],
  testTimeout: 60000,
};
