// The control server's TLS key and self-signed certificate, made once with the `openssl` CLI
// (node:crypto cannot write X.509 certificates) and kept in the state directory. TLS is only the
// transport: nodes authenticate the coordinator with the Noise handshake against the public key
// from the join string, so the certificate is neither pinned nor checked by clients.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PlatformError, mkdirPrivate, withPrivateUmask } from '../util/index.js';

export const TLS_KEY_FILE = 'control-tls.key';
export const TLS_CERT_FILE = 'control-tls.crt';
const CERT_DAYS = '3650';

/** Reads the key and certificate from `dir`, creating them first when missing. */
export function loadOrCreateTlsCert(dir: string): { key: Buffer; cert: Buffer } {
  const keyPath = join(dir, TLS_KEY_FILE);
  const certPath = join(dir, TLS_CERT_FILE);
  if (!existsSync(keyPath) || !existsSync(certPath)) {
    mkdirPrivate(dir);
    try {
      // openssl inherits the private umask: the key file is 0600 from creation.
      withPrivateUmask(() => execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', keyPath, '-out', certPath, '-days', CERT_DAYS, '-subj', '/CN=meshtun-coordinator',
      ], { stdio: 'pipe' }));
    } catch (e) {
      throw new PlatformError(`could not create the control channel's TLS certificate in ${dir}: ${(e as Error).message}`,
        'install the openssl command (apt-get install openssl)');
    }
  }
  return { key: readFileSync(keyPath), cert: readFileSync(certPath) };
}
