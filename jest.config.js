// SPDX-License-Identifier: Apache-2.0
// Five projects: unit (pure, fast), integration (real sockets and processes), interop (real virsh/python/C clients),
// load (the abuse attacks of bench row 7 at a small size: memory and other clients' latency stay bounded), vm (real
// QEMU guests booted under TCG: `npm test` runs them after the others, one file at a time, so boots never compete).
const tsJest = ['ts-jest', { diagnostics: false }];
const project = (name, extra = {}) => ({
  displayName: name,
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  ...extra,
});
module.exports = {
  projects: [project('unit'), project('integration'), project('interop'), project('load'), project('vm')],
  testTimeout: 60000,
};
