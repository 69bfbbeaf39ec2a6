// SPDX-License-Identifier: Apache-2.0
// The helper's journal options on its command line: rotation size and retention.
import { JOURNAL_KEEP_FILES, JOURNAL_MAX_BYTES } from '../../../src/audit/journal';
import { UsageError, parseHelperArgs } from '../../../src/privileged/helper';

const base = ['--socket', '/run/vg/helper.sock', '--state-dir', '/var/lib/vg'];

test('--journal-keep-files: default 40 (about the audit log span), 0 keeps all, not a number is a usage error', () => {
  expect(parseHelperArgs(base)).toMatchObject({ journalMaxBytes: JOURNAL_MAX_BYTES, journalKeepFiles: JOURNAL_KEEP_FILES });
  expect(JOURNAL_KEEP_FILES).toBe(40);
  expect(JOURNAL_MAX_BYTES).toBe(16 * 1024 * 1024);
  expect(parseHelperArgs([...base, '--journal-keep-files', '3', '--journal-max-bytes', '65536'])).toMatchObject({
    journalKeepFiles: 3,
    journalMaxBytes: 65536,
  });
  expect(parseHelperArgs([...base, '--journal-keep-files', '0'])).toMatchObject({ journalKeepFiles: 0 });
  for (const bad of ['-1', 'x', '1.5', ''])
    expect(() => parseHelperArgs([...base, `--journal-keep-files=${bad}`])).toThrow(new UsageError(`--journal-keep-files: not a valid number: ${bad}`));
});
