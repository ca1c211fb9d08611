// A kernel TUN device on Linux through the native addon: IFF_TUN | IFF_NO_PI, non-blocking,
// batched reads and writes, MTU through ioctls, and a readiness watcher in Node's event loop.
//
// Addresses and routes are not set here (the daemon runs `ip`). The device may be moved to
// another network namespace (`ip link set <name> netns <ns>`): reads and writes keep working on
// the same file descriptor; setMtu then fails, because the control socket stays in the namespace
// the device was created in. When the interface is deleted the kernel detaches the descriptor
// (poll reports POLLERR, read/write fail with EBADFD): the device reports itself 'gone' once,
// so the daemon can exit as wireguard-go does.

import type { Device } from '../wireguard/index.js';
import { PlatformError, UserError } from '../util/index.js';
import { POLL_READABLE, tunNative, tunNativeUnavailable, type NativeTunApi, type PollHandle } from './native.js';

/** IFNAMSIZ - 1: the longest interface name Linux accepts. */
export const MAX_INTERFACE_NAME_LEN = 15;
/** IFNAMSIZ: the size of the buffer the kernel writes the actual name into. */
const IFNAMSIZ = 16;
/** The MTU wg-quick picks for a WireGuard interface over IPv6 underlays (1500 - 80). */
export const DEFAULT_TUN_MTU = 1420;
/** Linux refuses MTUs below 68 (IPv4's minimum); above 65535 a TUN cannot carry the packet. */
export const MIN_TUN_MTU = 68;
export const MAX_TUN_MTU = 65535;

/** Counters of failures that are not the device going away. */
export interface LinuxTunStats {
  readErrors: number;
  writeErrors: number;
  lastError: string;
}

/** Checks an interface name as Linux's dev_valid_name does; throws a UserError saying why not. */
export function checkInterfaceName(name: string): void {
  const why = name.length === 0 ? 'is empty'
    : Buffer.byteLength(name) > MAX_INTERFACE_NAME_LEN ? `is longer than ${MAX_INTERFACE_NAME_LEN} bytes`
      : name === '.' || name === '..' ? 'is "." or ".."'
        : /[/:\s]/.test(name) ? 'contains "/", ":" or whitespace'
          : '';
  if (why) throw new UserError(`invalid interface name "${name}": it ${why}`, 'pick a name like "mt0" (1-15 letters, digits, "-" or "_")');
}

function requireNative(): NativeTunApi {
  const n = tunNative();
  if (!n) throw new PlatformError(`cannot open a kernel TUN device: ${tunNativeUnavailable()}`);
  return n;
}

/** A Linux kernel TUN interface. */
export class LinuxTun implements Device {
  readonly stats: LinuxTunStats = { readErrors: 0, writeErrors: 0, lastError: '' };
  private currentMtu: number;
  private poll: PollHandle | null = null;
  private closed = false;
  private goneReason = '';
  private readonly goneCallbacks: ((reason: string) => void)[] = [];

  private constructor(
    private readonly native: NativeTunApi,
    /** The device's file descriptor (-1 once closed). */
    public fd: number,
    /** The control socket for MTU ioctls (in the namespace the device was created in). */
    private ctlFd: number,
    readonly name: string,
    mtu: number,
  ) {
    this.currentMtu = mtu;
  }

  /** Creates (or attaches to) TUN interface `name` ("mt%d" lets the kernel number it) and sets
   * its MTU. Throws UserError for a bad name, PlatformError when the system refuses (with a hint:
   * run as root, load the tun module, or use --userspace). */
  static open(name: string, mtu: number = DEFAULT_TUN_MTU): LinuxTun {
    checkInterfaceName(name);
    checkMtu(mtu);
    const n = requireNative();
    const E = n.errno;
    const fd = n.tunOpen();
    if (fd < 0) {
      const hint = fd === -E.ENOENT! || fd === -E.ENODEV! ? 'load the tun module with `modprobe tun`, or use --userspace'
        : fd === -E.EACCES! || fd === -E.EPERM! ? 'run as root, or use --userspace'
          : 'or use --userspace';
      throw new PlatformError(`cannot open /dev/net/tun: ${n.strerror(fd)} (${hint})`);
    }
    const nameOut = Buffer.alloc(IFNAMSIZ);
    const r = n.tunSetIff(fd, name, nameOut);
    if (r < 0) {
      n.close(fd);
      const what = r === -E.EPERM! || r === -E.EACCES! ? 'run as root or with CAP_NET_ADMIN, or use --userspace'
        : r === -E.EBUSY! ? 'another process has it open; stop it or pick another name'
          : r === -E.EINVAL! ? 'an interface with this name exists and is not a TUN device; pick another name'
            : 'or use --userspace';
      throw new PlatformError(`cannot create TUN interface "${name}": ${n.strerror(r)} (${what})`);
    }
    const actual = nameOut.toString('latin1', 0, nameOut.indexOf(0));
    const ctlFd = n.ctlSocket();
    if (ctlFd < 0) {
      n.close(fd);
      throw new PlatformError(`cannot open a control socket for "${actual}": ${n.strerror(ctlFd)}`);
    }
    const tun = new LinuxTun(n, fd, ctlFd, actual, mtu);
    try {
      tun.setMtu(mtu);
    } catch (e) {
      tun.close();
      throw e;
    }
    return tun;
  }

  get mtu(): number { return this.currentMtu; }

  /** True once the interface was deleted (or the descriptor otherwise detached). */
  get gone(): boolean { return this.goneReason !== ''; }

  start(onReadable: () => void): void {
    if (this.closed) throw new Error(`TUN ${this.name}: start after close`);
    if (this.poll) throw new Error(`TUN ${this.name}: start called twice`);
    const h = this.native.pollStart(this.fd, POLL_READABLE, (status) => {
      // libuv maps POLLERR to EBADF; a TUN descriptor reports POLLERR once its interface is gone.
      if (status < 0) this.markGone(status === -this.native.errno.EBADF! ? 'the interface was deleted' : `poll failed: ${this.native.strerror(status)}`);
      else onReadable();
    });
    if (typeof h === 'number') throw new PlatformError(`cannot watch TUN ${this.name}: ${this.native.strerror(h)}`);
    this.poll = h;
  }

  readBatch(bufs: Buffer[], sizes: Uint32Array, offset: number): number {
    if (this.closed || this.goneReason) return 0;
    const r = this.native.tunRead(this.fd, bufs, offset, sizes);
    if (r >= 0) return r;
    this.failed(r, 'read');
    return 0;
  }

  writeBatch(bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number): number {
    if (this.closed || this.goneReason || count === 0) return 0;
    const r = this.native.tunWrite(this.fd, bufs, offsets, sizes, count);
    if (r >= 0) return r;
    this.failed(r, 'write');
    return 0;
  }

  /** Sets the interface MTU. Throws UserError for an out-of-range value and PlatformError when
   * the kernel refuses (e.g. after the device moved to another namespace). */
  setMtu(mtu: number): void {
    checkMtu(mtu);
    if (this.closed) throw new Error(`TUN ${this.name}: setMtu after close`);
    const r = this.native.ifSetMtu(this.ctlFd, this.name, mtu);
    if (r < 0) {
      const moved = r === -this.native.errno.ENODEV! ? ' (was it moved to another network namespace?)' : '';
      throw new PlatformError(`cannot set the MTU of ${this.name} to ${mtu}: ${this.native.strerror(r)}${moved}`);
    }
    this.currentMtu = mtu;
  }

  /** Reads the MTU from the kernel (it may have been changed with `ip link`); keeps the last
   * known value when the kernel cannot tell (device in another namespace). */
  refreshMtu(): number {
    if (!this.closed) {
      const r = this.native.ifGetMtu(this.ctlFd, this.name);
      if (r > 0) this.currentMtu = r;
    }
    return this.currentMtu;
  }

  /** Runs `cb` once when the interface goes away (deleted, or its descriptor detached). The
   * device stops reading; the owner should close it and shut down. */
  onGone(cb: (reason: string) => void): void {
    if (this.goneReason) process.nextTick(cb, this.goneReason);
    else this.goneCallbacks.push(cb);
  }

  /** Whether the readiness watcher keeps the process alive (default true). */
  setKeepAlive(keep: boolean): void {
    if (this.poll) this.native.pollRef(this.poll, keep);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopPoll();
    this.native.close(this.fd);
    this.native.close(this.ctlFd);
    this.fd = -1;
    this.ctlFd = -1;
  }

  private stopPoll(): void {
    if (this.poll) {
      this.native.pollStop(this.poll);
      this.poll = null;
    }
  }

  private failed(errno: number, op: string): void {
    const E = this.native.errno;
    // EIO means the interface is down (writes before `ip link set up`, or after `ip link set
    // down`): packets are dropped and counted, the device is not gone.
    if (errno === -E.EBADFD! || errno === -E.ENXIO! || errno === -E.ENODEV! || errno === -E.EBADF!) {
      this.markGone(`the interface was deleted; ${op}: ${this.native.strerror(errno)}`);
      return;
    }
    if (op === 'read') this.stats.readErrors++;
    else this.stats.writeErrors++;
    this.stats.lastError = `${op}: ${this.native.strerror(errno)}`;
  }

  private markGone(why: string): void {
    if (this.goneReason || this.closed) return;
    this.goneReason = `TUN interface ${this.name} is gone (${why})`;
    this.stopPoll();
    const reason = this.goneReason;
    for (const cb of this.goneCallbacks.splice(0)) process.nextTick(cb, reason);
  }
}

function checkMtu(mtu: number): void {
  if (!Number.isInteger(mtu) || mtu < MIN_TUN_MTU || mtu > MAX_TUN_MTU) {
    throw new UserError(`invalid MTU ${mtu}: it must be a whole number from ${MIN_TUN_MTU} to ${MAX_TUN_MTU}`,
      'WireGuard interfaces usually use 1420 (1280 is the minimum for IPv6)');
  }
}
