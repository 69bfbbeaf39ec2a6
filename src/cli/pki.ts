// SPDX-License-Identifier: Apache-2.0
// `virtgate pki ...`: command-line front of src/pki (CA, server and client certificates, revocation, CRL); local files only.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ClientFiles, checkHost, checkIp, initCa, issueClient, issueServer, revoke, writeCrl } from '../pki/pki';

export const PKI_USAGE = `usage: virtgate pki COMMAND [OPTIONS]
  init-ca --dir DIR [--cn NAME] [--days N]              create a CA: DIR/cacert.pem, DIR/private/cakey.pem
  server  --dir DIR --ca DIR [--host NAME]... [--ip ADDR]... [--days N]
                                                        DIR/servercert.pem, DIR/private/serverkey.pem
  client  --dir DIR --ca DIR --cn USER [--o TENANT] [--days N]
                                                        DIR/clientcert.pem, DIR/private/clientkey.pem; DIR is a libvirt ?pkipath=DIR
  revoke  --ca DIR --cert FILE                          mark a certificate revoked (then run crl)
  crl     --ca DIR [--days N]                           write DIR/cacrl.pem with every revoked certificate
options:
  --dir DIR      where the CA, server or client files go
  --ca DIR       the CA directory (as made by init-ca) that signs
  --cn NAME      init-ca: the CA's common name; client: the user name (the identity x509:NAME)
  --o TENANT     client: the subject's organisation (O), which tlsAllowedDnList can match ("O=TENANT,CN=*")
  --host NAME    server: a DNS name clients connect to (RFC 1123; '*.' wildcard allowed); repeat for several
  --ip ADDR      server: an IPv4 or IPv6 address clients connect to; repeat for several
  --cert FILE    revoke: the certificate to revoke
  --days N       validity in days (default: CA 3650, certificates 825, CRL 30)
  -h, --help     this text
Private keys are written mode 0600 in 0700 directories. exit status: 0 done, 1 failed, 2 usage`;

const OPTIONS = {
  dir: { type: 'string' },
  ca: { type: 'string' },
  cn: { type: 'string' },
  o: { type: 'string' },
  host: { type: 'string', multiple: true },
  ip: { type: 'string', multiple: true },
  cert: { type: 'string' },
  days: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface PkiIo {
  stdout(s: string): void;
  stderr(s: string): void;
}

// Returns the exit status: 0 done, 1 failed, 2 usage.
export function pkiMain(argv: string[], io: PkiIo): number {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    io.stderr(`error: pki: ${(e as Error).message}\n${PKI_USAGE}\n`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  if (v.help || positionals.length === 0) {
    (v.help ? io.stdout : io.stderr)(`${PKI_USAGE}\n`);
    return v.help ? 0 : 2;
  }
  const need = (name: 'dir' | 'ca' | 'cn' | 'cert'): string => {
    const value = v[name];
    if (!value) throw Object.assign(new Error(`pki ${positionals[0]}: --${name} is required`), { usage: true });
    return path.resolve(value);
  };
  const days = v.days === undefined ? undefined : Number(v.days);
  try {
    if (positionals.length !== 1) throw Object.assign(new Error(`pki: expected one command, got ${positionals.join(' ')}`), { usage: true });
    if (days !== undefined && (!Number.isInteger(days) || days < 1)) throw Object.assign(new Error(`pki: --days must be a positive integer`), { usage: true });
    switch (positionals[0]) {
      case 'init-ca':
        io.stdout(`CA certificate: ${initCa({ dir: need('dir'), cn: v.cn, days }).certFile}\n`);
        break;
      case 'server': {
        // A bad name is a usage error, found before anything is read or written.
        for (const [check, list] of [
          [checkHost, v.host],
          [checkIp, v.ip],
        ] as const) {
          for (const x of list ?? []) {
            try {
              check(x);
            } catch (e) {
              throw Object.assign(e as Error, { usage: true });
            }
          }
        }
        const r = issueServer({ dir: need('dir'), caDir: need('ca'), hosts: v.host ?? [], ips: v.ip ?? [], days });
        io.stdout(`server certificate: ${r.certFile}\nserver key: ${r.keyFile}\n`);
        break;
      }
      case 'client': {
        const dir = need('dir');
        const r = issueClient({ dir, caDir: need('ca'), cn: v.cn ?? need('cn'), o: v.o, days });
        io.stdout(
          `client certificate: ${r.certFile}\nclient key: ${r.keyFile} (also ${path.join(dir, ClientFiles.pkipathKey)})\nlibvirt URI parameter: ?pkipath=${dir}\n`,
        );
        break;
      }
      case 'revoke': {
        const e = revoke({ caDir: need('ca'), certFile: need('cert') });
        io.stdout(`revoked serial ${e.serial} (${e.subject}); run 'virtgate pki crl' to publish it\n`);
        break;
      }
      case 'crl': {
        const r = writeCrl({ caDir: need('ca'), days });
        io.stdout(`CRL: ${r.crlFile} (${r.revoked} revoked)\n`);
        break;
      }
      default:
        throw Object.assign(new Error(`pki: unknown command '${positionals[0]}'`), { usage: true });
    }
    return 0;
  } catch (e) {
    const usage = (e as { usage?: boolean }).usage === true;
    io.stderr(`error: ${(e as Error).message}\n${usage ? `${PKI_USAGE}\n` : ''}`);
    return usage ? 2 : 1;
  }
}
