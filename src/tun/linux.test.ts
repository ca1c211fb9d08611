// Kernel TUN tests in network namespaces: ping through a LinuxTun (echo requests read in batches,
// replies written back), keep working after the device moves to another namespace, report
// 'gone' when the interface is deleted, and word the errors a user sees.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Topology, captureOutput, isRoot, sh, uniqueTag, waitExit, waitFor } from '../../test/netns.js';
import { internetChecksum } from '../wire/index.js';
import { PlatformError, UserError } from '../util/index.js';
import { LinuxTun, checkInterfaceName, tunNativeUnavailable } from './index.js';

const skip = !isRoot ? 'needs root' : tunNativeUnavailable() || false;
const topo = new Topology(uniqueTag('mtt'));
after(() => topo.destroy());

const BATCH = 16;
const OFFSET = 16; // room for a WireGuard header in front, as the engine reads
const LOCAL = '100.64.77.1';
const REMOTE = '100.64.77.2';

/** Reads every queued packet, turns IPv4 echo requests to REMOTE into replies in place, writes
 * them back as one batch; returns [packets read in the largest single readBatch, replies]. */
function answerPings(tun: LinuxTun, bufs: Buffer[], sizes: Uint32Array, offsets: Uint32Array, outSizes: Uint32Array): [number, number] {
  let largest = 0, replies = 0;
  for (;;) {
    const n = tun.readBatch(bufs, sizes, OFFSET);
    if (n === 0) break;
    largest = Math.max(largest, n);
    let out = 0;
    for (let i = 0; i < n; i++) {
      const p = bufs[i]!.subarray(OFFSET, OFFSET + sizes[i]!);
      if (p.length < 28 || p[0]! >> 4 !== 4 || p[9] !== 1) continue; // IPv4 + ICMP only
      const ihl = (p[0]! & 15) * 4;
      if (p[ihl] !== 8 || p.readUInt32BE(16) !== 0x6440_4d02) continue; // echo request to REMOTE
      const src = p.readUInt32BE(12);
      p.writeUInt32BE(p.readUInt32BE(16), 12);
      p.writeUInt32BE(src, 16);
      p.writeUInt16BE(0, 10);
      p.writeUInt16BE(internetChecksum(p, 0, ihl), 10);
      p[ihl] = 0; // echo reply
      p.writeUInt16BE(0, ihl + 2);
      p.writeUInt16BE(internetChecksum(p, ihl, p.length - ihl), ihl + 2);
      // Write from a different batch slot layout to exercise offsets: packet i stays in bufs[i].
      offsets[out] = OFFSET;
      outSizes[out] = p.length;
      if (out !== i) bufs[i]!.copy(bufs[out]!, OFFSET, OFFSET, OFFSET + p.length);
      out++;
    }
    if (out > 0) replies += tun.writeBatch(bufs, offsets, outSizes, out);
  }
  return [largest, replies];
}

function configure(ns: string, name: string): void {
  sh('ip', ['-n', ns, 'addr', 'add', `${LOCAL}/24`, 'dev', name]);
  sh('ip', ['-n', ns, 'link', 'set', name, 'up']);
}

/** Pings REMOTE from `ns` with `count` packets sent back to back; answers after a short delay so
 * the requests queue up and are read in batches. */
async function pingThrough(tun: LinuxTun, ns: string, count: number): Promise<{ ok: boolean; largest: number; replies: number; output: string }> {
  const bufs = Array.from({ length: BATCH }, () => Buffer.alloc(OFFSET + 2048));
  const sizes = new Uint32Array(BATCH), offsets = new Uint32Array(BATCH), outSizes = new Uint32Array(BATCH);
  let largest = 0, replies = 0;
  let timer: NodeJS.Timeout | null = null;
  readable = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      const [l, r] = answerPings(tun, bufs, sizes, offsets, outSizes);
      largest = Math.max(largest, l);
      replies += r;
    }, 150);
  };
  const ping = topo.spawn(ns, 'ping', ['-n', '-c', String(count), '-l', String(count), '-W', '3', '-w', '8', REMOTE]);
  const out = captureOutput(ping);
  await waitExit(ping, 15000);
  if (timer) clearTimeout(timer);
  readable = () => {};
  return { ok: ping.exitCode === 0, largest, replies, output: out.text() };
}

let readable: () => void = () => {};

test('tun: ping through a kernel TUN in batches, move it to another namespace, see it gone when deleted', { skip }, async () => {
  const name = uniqueTag('mtt');
  const nsA = topo.ns('a'), nsB = topo.ns('b');
  const tun = LinuxTun.open(name, 1420);
  topo.onDestroy(() => { tun.close(); sh('ip', ['link', 'del', name], { allowFail: true }); });
  assert.equal(tun.name, name);
  assert.equal(tun.mtu, 1420);
  tun.setMtu(1380);
  assert.equal(tun.refreshMtu(), 1380);
  assert.match(sh('ip', ['link', 'show', name]), /mtu 1380/);
  tun.start(() => readable());

  sh('ip', ['link', 'set', name, 'netns', nsA]);
  configure(nsA, name);
  const first = await pingThrough(tun, nsA, 8);
  assert.ok(first.ok, `ping through the TUN failed:\n${first.output}`);
  assert.match(first.output, /8 received/);
  assert.equal(first.replies, 8);
  assert.ok(first.largest > 1, `expected batched reads, the largest batch was ${first.largest}`);

  // Moved again: same descriptor, still reading and writing; the MTU ioctl now misses it.
  sh('ip', ['-n', nsA, 'link', 'set', name, 'netns', nsB]);
  configure(nsB, name);
  const second = await pingThrough(tun, nsB, 4);
  assert.ok(second.ok, `ping after the move failed:\n${second.output}`);
  assert.match(second.output, /4 received/);
  assert.throws(() => tun.setMtu(1300), (e: Error) => e instanceof PlatformError && /moved to another network namespace/.test(e.message));
  assert.equal(tun.mtu, 1380);

  let goneReason = '';
  tun.onGone((r) => { goneReason = r; });
  sh('ip', ['-n', nsB, 'link', 'del', name]);
  await waitFor('the gone notification', () => goneReason, 5000, 20);
  assert.match(goneReason, new RegExp(`TUN interface ${name} is gone`));
  assert.equal(tun.gone, true);
  assert.equal(tun.readBatch([Buffer.alloc(64)], new Uint32Array(1), 0), 0);
  tun.close();
  tun.close(); // idempotent
});

test('tun: "%d" names are numbered by the kernel and reads on an idle device return 0', { skip }, () => {
  const tun = LinuxTun.open('mtt%d');
  try {
    assert.match(tun.name, /^mtt\d+$/);
    assert.equal(tun.readBatch([Buffer.alloc(2048)], new Uint32Array(1), 0), 0);
  } finally {
    tun.close();
  }
});

test('tun: user mistakes and refusals name the problem and the fix', { skip }, () => {
  assert.throws(() => checkInterfaceName(''), /invalid interface name "": it is empty/);
  assert.throws(() => LinuxTun.open('a-much-too-long-name'), (e: Error) => e instanceof UserError && /longer than 15 bytes/.test(e.message));
  assert.throws(() => LinuxTun.open('bad/name'), /contains "\/"/);
  assert.throws(() => LinuxTun.open('mttok', 20), /invalid MTU 20: it must be a whole number from 68 to 65535/);
  assert.throws(() => LinuxTun.open('lo'), (e: Error) => e instanceof PlatformError && /cannot create TUN interface "lo": .*is not a TUN device/.test(e.message));
});

test('tun: without CAP_NET_ADMIN the error says to run as root or use --userspace', { skip }, () => {
  const script = `import('${new URL('./index.js', import.meta.url).href}').then((m) => {
    try { m.LinuxTun.open('mttnoroot'); console.log('opened'); } catch (e) { console.log(e.name + ': ' + e.message); }
  });`;
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all',
    process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /PlatformError: cannot (open \/dev\/net\/tun|create TUN interface "mttnoroot"): (Operation not permitted|Permission denied) \(run as root.*use --userspace\)/);
});
