// The UAPI socket: serves get=1 / set=1 (uapi.ts) for one UapiDevice on a Unix stream socket,
// normally /var/run/wireguard/<iface>.sock, where wg(8) looks for userspace interfaces.
// A connection may carry several requests in a row; several connections may be open at once,
// and their requests reach the device one at a time. Garbage is answered with an errno and the
// connection is closed; nothing a client sends can crash the server.

import { createServer, connect, type Server, type Socket } from 'node:net';
import { lstatSync, unlinkSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Logger, UserError, mkdirPrivate, withSocketUmask } from '../util/index.js';
import {
  UapiError, UapiRequestParser, UAPI_ERRNO, uapiGetReply, uapiStatusLine,
  type UapiDevice, type UapiRequest,
} from './uapi.js';

/** Where wg(8) looks for userspace interfaces. */
export const UAPI_SOCKET_DIR = '/var/run/wireguard';
const IFACE_NAME_RE = /^[a-zA-Z0-9_=+.-]{1,15}$/;
/** A bound on open connections (wg(8) uses one at a time). */
const MAX_CONNECTIONS = 64;

const log = new Logger('uapi');

/** The socket path for interface `iface` ("mt0" -> /var/run/wireguard/mt0.sock). */
export function uapiSocketPath(iface: string, dir = UAPI_SOCKET_DIR): string {
  if (!IFACE_NAME_RE.test(iface)) {
    throw new UserError(`invalid interface name ${JSON.stringify(iface)}: use 1-15 characters from a-z A-Z 0-9 _ = + . -`);
  }
  return join(dir, `${iface}.sock`);
}

export class UapiServer {
  private readonly sockets = new Set<Socket>();
  /** Serializes device access across connections. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(readonly path: string, private readonly device: UapiDevice, private readonly server: Server,
    private readonly inode: number) {}

  /** Listens on `path` (see uapiSocketPath). Creates the directory (mode 0700) if missing,
   * replaces a stale socket file nobody answers on; the socket is mode 0600 from creation. Throws
   * UserError when another process is serving `path`. */
  static async listen(path: string, device: UapiDevice): Promise<UapiServer> {
    mkdirPrivate(dirname(path));
    const server = createServer({ allowHalfOpen: true });
    server.maxConnections = MAX_CONNECTIONS;
    try {
      await listenOn(server, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      if (await somebodyListens(path)) {
        throw new UserError(`${path} is in use by another process: is this interface already up? Stop it first, or choose another interface name`);
      }
      if (!lstatSync(path).isSocket()) {
        throw new UserError(`${path} exists and is not a socket: remove it or choose another interface name`);
      }
      unlinkSync(path);
      await listenOn(server, path);
    }
    const self = new UapiServer(path, device, server, statSync(path).ino);
    server.on('connection', (socket) => self.serve(socket));
    server.on('error', (err) => log.warn(`socket ${path}: ${err.message}`));
    return self;
  }

  /** Number of open connections (for tests and status). */
  get connections(): number { return this.sockets.size; }

  /** Stops listening, closes open connections and removes the socket file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await done;
    try {
      // Only remove the file if it is still ours (another process may have replaced it).
      if (statSync(this.path).ino === this.inode) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    const parser = new UapiRequestParser();
    const pending: UapiRequest[] = [];
    let busy = false;
    let ended = false;
    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      socket.pause();
      try {
        while (pending.length > 0 && !socket.destroyed) {
          const keepOpen = await this.handle(socket, pending.shift()!);
          if (!keepOpen) {
            // Answered; drop whatever else the client sends.
            pending.length = 0;
            socket.end(() => socket.destroy());
            return;
          }
        }
        if (ended && !socket.destroyed) socket.end();
      } catch (err) {
        log.warn(`connection failed: ${(err as Error).message}`);
        socket.destroy();
      } finally {
        busy = false;
        if (!socket.destroyed) socket.resume();
      }
    };
    socket.on('data', (chunk: Buffer) => {
      if (parser.closed) return;
      parser.push(chunk, pending);
      if (pending.length > 0) void pump();
    });
    socket.on('end', () => {
      ended = true;
      if (!busy && pending.length === 0) socket.end();
    });
    socket.on('error', (err) => log.debug(`connection error: ${err.message}`));
    socket.on('close', () => this.sockets.delete(socket));
  }

  /** Answers one request; returns false when the connection must be closed. */
  private async handle(socket: Socket, req: UapiRequest): Promise<boolean> {
    switch (req.kind) {
      case 'fatal':
        log.debug(`bad request: ${req.error.message}`);
        await write(socket, uapiStatusLine(req.error.errno));
        return false;
      case 'set-error':
        log.info(`set refused: ${req.error.message}`);
        await write(socket, uapiStatusLine(req.error.errno));
        return true;
      case 'set': {
        const errno = await this.exclusive(async () => {
          try {
            await this.device.applyConfig(req.ops);
            return 0;
          } catch (err) {
            if (err instanceof UapiError) {
              log.info(`set refused: ${err.message}`);
              return err.errno;
            }
            log.warn(`set failed: ${(err as Error).stack ?? String(err)}`);
            return UAPI_ERRNO.ENOANO;
          }
        });
        await write(socket, uapiStatusLine(errno));
        return true;
      }
      case 'get': {
        const state = await this.exclusive(async () => {
          try {
            return this.device.getConfig();
          } catch (err) {
            log.warn(`get failed: ${(err as Error).stack ?? String(err)}`);
            return null;
          }
        });
        // wg(8) reads a get's errno as a positive number (unlike a set's).
        if (!state) return write(socket, `errno=${UAPI_ERRNO.EIO}\n\n`).then(() => true);
        for (const piece of uapiGetReply(state)) {
          if (!(await write(socket, piece))) return false;
        }
        return true;
      }
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.then(() => undefined, () => undefined);
    return run;
  }
}

/** Writes `text`, waiting for the socket to drain when its buffer is full. False: socket gone. */
function write(socket: Socket, text: string): Promise<boolean> {
  if (socket.destroyed || !socket.writable) return Promise.resolve(false);
  if (socket.write(text, 'latin1')) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    socket.on('drain', onDrain);
    socket.on('close', onClose);
  });
}

function listenOn(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    // Bound under the private umask: the socket is 0600 from the moment it exists.
    withSocketUmask(() => server.listen(path, () => {
      server.off('error', onError);
      resolve();
    }));
  });
}

/** True when a process accepts connections on the Unix socket at `path`. */
function somebodyListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
