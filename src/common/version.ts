// SPDX-License-Identifier: Apache-2.0
// The package version, for every binary's --version (tsc copies package.json next to the build, so this holds in both).
import { version } from '../../package.json';

export const VERSION: string = version;

export const versionLine = (program: string): string => `${program} ${VERSION}\n`;
