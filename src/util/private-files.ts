// Files, directories and Unix sockets that hold secrets or state (keys, coordinator.db,
// membership.json, API and UAPI sockets) are private to the user running meshtun from the moment
// they exist: created with mode 0600 (0700 for directories) through the umask or the open mode,
// never made first and tightened with chmod afterwards (a window in which another user could open
// them). This holds inside a state directory that already exists with looser permissions too.
//
// The umask is process-wide; Node runs JavaScript on one thread and binds a Unix socket and
// creates a file synchronously, so changing it around one call and restoring it is safe.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

/** The umask under which private files and directories are made (group and others get nothing). */
export const PRIVATE_UMASK = 0o077;
/** The umask under which a Unix socket is bound: sockets start from 0777, so 0177 leaves 0600. */
export const SOCKET_UMASK = 0o177;
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** Runs `fn` with the umask set to PRIVATE_UMASK, then restores the previous one. Everything `fn`
 * creates synchronously (files, directories, a Unix socket bound by listen(), a child process's
 * files) is private. */
export function withPrivateUmask<T>(fn: () => T, umask = PRIVATE_UMASK): T {
  const old = process.umask(umask);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}

/** Runs `fn`, which binds a Unix socket (server.listen(path)), so the socket is 0600 from creation. */
export function withSocketUmask<T>(fn: () => T): T {
  return withPrivateUmask(fn, SOCKET_UMASK);
}

/** Creates `dir` and its missing parents with mode 0700. */
export function mkdirPrivate(dir: string): void {
  withPrivateUmask(() => mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE }));
}

/** Writes `data` to `path` as a private file (0600 from creation): written to a new temporary
 * file beside it and renamed over it, so readers never see half a file and an existing file's
 * looser mode does not carry over. */
export function writePrivateFile(path: string, data: string | Buffer): void {
  const tmp = `${path}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  withPrivateUmask(() => {
    const fd = openSync(tmp, 'wx', PRIVATE_FILE_MODE);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
  renameSync(tmp, path);
}
