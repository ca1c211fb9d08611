// Pid files, so `meshtun down <iface>` can find the process running an interface.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes this process's pid to `file` and returns the cleanup that removes it again, but only
 * while it still names this process (a newer process may have taken the name over). */
export function writeOwnPidFile(file: string): () => Promise<void> {
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  writeFileSync(file, `${process.pid}\n`);
  return async () => {
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file);
    } catch { /* already gone */ }
  };
}
