// SPDX-License-Identifier: Apache-2.0
// A daemon under test (virtgate or a private libvirtd): its URIs and the processes whose RSS the bench reports.
export const GUESTS = 3; // running guests on each daemon, as in the seed benchmark

export interface Target {
  name: 'virtgate' | 'libvirtd';
  unixUri: string;
  tcpUri: string | null; // null when the daemon has no TCP listener
  tlsUri: string | null; // null when it has no TLS listener
  pki?: string; // virtgate's PKI directory (ca/, server/, admin/), which the floor servers' TLS listeners reuse
  // Processes whose RSS matters, by label (virtgate: front end and helper; libvirtd: itself).
  processes(): { label: string; pid: number }[];
  stop(): Promise<void>;
}
