/* UDP sockets for WireGuard traffic: dual-stack bind, batched recvmmsg/sendmmsg, UDP GSO and GRO,
 * SO_MARK and socket buffer sizes.
 *
 * A peer address travels between C and TypeScript as a 20-byte record (ADDR_RECORD_LEN):
 *   [0]      family: 4 or 6
 *   [1]      reserved, 0
 *   [2..3]   port, big-endian
 *   [4..19]  address; IPv4 as an IPv4-mapped IPv6 address (::ffff:a.b.c.d)
 *
 * The local address a datagram arrived on (and leaves from, for sticky sources) travels as a
 * 24-byte source record (SRC_RECORD_LEN):
 *   [0]      family: 0 (none: the kernel chooses), 4 or 6
 *   [1]      received records only: 1 when the datagram has the same sender and local address as
 *            the one before it in the same call (its endpoint can be reused), else 0
 *   [2..3]   reserved, 0
 *   [4..7]   interface index, big-endian (where the datagram arrived)
 *   [8..23]  the local address; IPv4 as an IPv4-mapped IPv6 address
 *
 *   udpOpen(family 4|6, port) -> fd | -errno      6: AF_INET6 with IPV6_V6ONLY=0 (dual-stack)
 *   udpLocalPort(fd) -> port | -errno
 *   udpSetPktinfo(fd, sockFamily) -> 0 | -errno    asks the kernel for each datagram's local
 *       address: IPV6_RECVPKTINFO on a dual-stack socket (IPv4 datagrams then come with an
 *       IPV6_PKTINFO holding the IPv4-mapped address), IP_PKTINFO on an IPv4 socket
 *   udpRecv(fd, bufs, sizes, addrs: Buffer[, locals: Buffer]) -> count | -errno
 *       datagram i lands at bufs[i][0..], its length in sizes[i] (0 when it did not fit: drop),
 *       its sender as record i of addrs, and (when locals is given) the local address it was sent
 *       to as source record i of locals (family 0 when the kernel gave none)
 *   udpSetGro(fd, on) -> 0 | -errno                UDP_GRO: the kernel may hand over coalesced
 *       super-datagrams (runs of equal-size datagrams from one sender) with their segment size
 *   udpRecvGro(fd, bufs, sizes, addrs, scratch, state, out[, locals]) -> count | -errno
 *       udpRecv for a socket with UDP_GRO on: super-datagrams land in scratch (GRO_SLOTS slots of
 *       GRO_SLOT_SIZE bytes) and are split into bufs[i] exactly as udpRecv would have received the
 *       datagrams one by one. Segments that do not fit into this call's bufs stay in scratch and
 *       state (GRO_STATE_LEN bytes, zeroed by the caller once) and come first next call.
 *       out (Uint32Array(3)) = [super-datagrams of more than one segment received by this call,
 *       datagrams in them, 1 when segments are still held for the next call else 0]
 *   udpSend(fd, sockFamily, bufs, offsets, sizes, count, addr: Buffer, addrOff[, src, srcOff]) -> count | -errno
 *   udpSendGso(fd, sockFamily, bufs, offsets, sizes, count, segSize, addr, addrOff[, src, srcOff]) -> count | -errno
 *       sendmsg calls whose payload the kernel splits into segSize-byte datagrams (UDP_SEGMENT),
 *       as many segments per call as fit in 64 KiB (at most GSO_MAX_SEGMENTS)
 *       With a source record src (family 4 or 6, same family as the destination) every message
 *       carries IP_PKTINFO (ipi_spec_dst) or IPV6_PKTINFO, so the datagrams leave from that local
 *       address. A source the kernel no longer has is refused: EINVAL (IPv6), ENETUNREACH or
 *       EADDRNOTAVAIL (IPv4), ENODEV (a vanished interface); the caller then drops the source and
 *       sends again without it.
 *   udpGsoSupported(fd) -> 1 | 0
 *   udpSetMark(fd, mark) -> 0 | -errno
 *   udpSetBuffers(fd, bytes, out: Uint32Array(2)) -> 0 | -errno   out = actual [rcvbuf, sndbuf] */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define ADDR_RECORD_LEN 20
#define ADDR_FAMILY 0
#define ADDR_PORT 2
#define ADDR_IP 4
#define SRC_RECORD_LEN 24
#define SRC_FAMILY 0
#define SRC_REPEAT 1
#define SRC_IFINDEX 4
#define SRC_IP 8
/* Control bytes a received datagram may carry: its local address (IPV6_PKTINFO and/or
 * IP_PKTINFO) and a UDP_GRO segment size. */
#define RECV_CONTROL_LEN \
  (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(int)))
/* Control bytes of a sent message: a UDP_SEGMENT size and a source address. */
#define SEND_CONTROL_LEN (CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(struct in6_pktinfo)))
/* Largest number of segments one UDP_SEGMENT send may carry on older kernels. */
#define GSO_MAX_SEGMENTS 64
/* Largest UDP payload of one send: 65535 minus the UDP and IPv6 headers. */
#define GSO_MAX_PAYLOAD (65535 - 8 - 40)
/* Super-datagrams one udpRecvGro recvmmsg takes at most, and the bytes each may hold (a GRO
 * packet is at most 64 KiB including its IP and UDP headers). */
#define GRO_SLOTS 64
#define GRO_SLOT_SIZE 65536
/* out[] of udpRecvGro. */
#define GRO_OUT_COALESCED 0
#define GRO_OUT_SEGMENTS 1
#define GRO_OUT_PENDING 2
#define GRO_OUT_LEN 3

typedef union {
  struct sockaddr sa;
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
} sockaddr_any;

static const uint8_t V4_MAPPED_PREFIX[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Writes a kernel socket address as a record. */
static void addr_to_record(const sockaddr_any *a, uint8_t *rec) {
  memset(rec, 0, ADDR_RECORD_LEN);
  if (a->sa.sa_family == AF_INET) {
    rec[ADDR_FAMILY] = 4;
    memcpy(rec + ADDR_PORT, &a->v4.sin_port, 2);
    memcpy(rec + ADDR_IP, V4_MAPPED_PREFIX, 12);
    memcpy(rec + ADDR_IP + 12, &a->v4.sin_addr, 4);
  } else if (a->sa.sa_family == AF_INET6) {
    const uint8_t *ip = a->v6.sin6_addr.s6_addr;
    rec[ADDR_FAMILY] = memcmp(ip, V4_MAPPED_PREFIX, 12) == 0 ? 4 : 6;
    memcpy(rec + ADDR_PORT, &a->v6.sin6_port, 2);
    memcpy(rec + ADDR_IP, ip, 16);
  }
}

/* Builds a destination for a socket of family sockFamily from a record; 0 or -errno. */
static int record_to_addr(const uint8_t *rec, int sockFamily, sockaddr_any *a, socklen_t *alen) {
  memset(a, 0, sizeof *a);
  if (sockFamily == 6) {
    a->v6.sin6_family = AF_INET6;
    memcpy(&a->v6.sin6_port, rec + ADDR_PORT, 2);
    memcpy(a->v6.sin6_addr.s6_addr, rec + ADDR_IP, 16);
    if (rec[ADDR_FAMILY] == 4) memcpy(a->v6.sin6_addr.s6_addr, V4_MAPPED_PREFIX, 12);
    *alen = sizeof a->v6;
    return 0;
  }
  if (rec[ADDR_FAMILY] != 4) return -EAFNOSUPPORT;
  a->v4.sin_family = AF_INET;
  memcpy(&a->v4.sin_port, rec + ADDR_PORT, 2);
  memcpy(&a->v4.sin_addr, rec + ADDR_IP + 12, 4);
  *alen = sizeof a->v4;
  return 0;
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int is_link_local(const uint8_t *ip16) { return ip16[0] == 0xfe && (ip16[1] & 0xc0) == 0x80; }

static int all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0) return 0;
  return 1;
}

/* Writes the local address a message was received on, from its IP_PKTINFO / IPV6_PKTINFO
 * control data, as a source record (family 0 when there is none). For IPv4 IP_PKTINFO's
 * ipi_spec_dst wins over IPV6_PKTINFO's mapped header address when both came: it is the address
 * a reply should leave from (the two differ only for datagrams to broadcast addresses). */
static void control_to_source(struct msghdr *h, uint8_t *rec) {
  memset(rec, 0, SRC_RECORD_LEN);
  if (h->msg_controllen == 0) return;
  int fromIp = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
      struct in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      rec[SRC_FAMILY] = 4;
      put_be32(rec + SRC_IFINDEX, (uint32_t)pi.ipi_ifindex);
      memcpy(rec + SRC_IP, V4_MAPPED_PREFIX, 12);
      memcpy(rec + SRC_IP + 12, &pi.ipi_spec_dst, 4);
      fromIp = 1;
    } else if (!fromIp && c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
               c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      rec[SRC_FAMILY] = memcmp(pi.ipi6_addr.s6_addr, V4_MAPPED_PREFIX, 12) == 0 ? 4 : 6;
      put_be32(rec + SRC_IFINDEX, pi.ipi6_ifindex);
      memcpy(rec + SRC_IP, pi.ipi6_addr.s6_addr, 16);
    }
  }
  if (rec[SRC_FAMILY] == 4 ? all_zero(rec + SRC_IP + 12, 4) : all_zero(rec + SRC_IP, 16)) rec[SRC_FAMILY] = 0;
}

/* Flags source record k of a receive batch as a repeat when datagram k has the same sender and
 * local address as datagram k-1 (GRO segments of one super-datagram, a burst from one peer), so
 * the caller reuses the endpoint it found for k-1 instead of looking it up again. */
static void mark_repeat(const uint8_t *addrs, uint8_t *locals, uint32_t k) {
  uint8_t *l = locals + (size_t)k * SRC_RECORD_LEN;
  l[SRC_REPEAT] = 0;
  if (k == 0) return;
  const uint8_t *p = l - SRC_RECORD_LEN;
  const uint8_t *a = addrs + (size_t)k * ADDR_RECORD_LEN;
  if (l[SRC_FAMILY] == p[SRC_FAMILY] && memcmp(l + SRC_IFINDEX, p + SRC_IFINDEX, SRC_RECORD_LEN - SRC_IFINDEX) == 0 &&
      memcmp(a, a - ADDR_RECORD_LEN, ADDR_RECORD_LEN) == 0)
    l[SRC_REPEAT] = 1;
}

/* Writes at cm the control message that makes a datagram to the destination record dst leave
 * from the source record src, on a socket of family sockFamily; returns its bytes (CMSG_SPACE),
 * 0 when the source does not apply (none, or not of the destination's family).
 * IPv4: IP_PKTINFO with ipi_spec_dst and no interface, so routing picks the interface as it
 * would without a source (accepted by IPv4 and dual-stack sockets alike). IPv6: IPV6_PKTINFO with
 * the interface index only when the source or the destination is link-local (its scope needs
 * the interface; the destination record has no scope id of its own). */
static size_t source_cmsg(const uint8_t *src, const uint8_t *dst, int sockFamily, struct cmsghdr *cm) {
  if (src == NULL || src[SRC_FAMILY] == 0 || src[SRC_FAMILY] != dst[ADDR_FAMILY]) return 0;
  if (src[SRC_FAMILY] == 4) {
    struct in_pktinfo pi;
    memset(&pi, 0, sizeof pi);
    memcpy(&pi.ipi_spec_dst, src + SRC_IP + 12, 4);
    cm->cmsg_level = IPPROTO_IP;
    cm->cmsg_type = IP_PKTINFO;
    cm->cmsg_len = CMSG_LEN(sizeof pi);
    memcpy(CMSG_DATA(cm), &pi, sizeof pi);
    return CMSG_SPACE(sizeof pi);
  }
  if (sockFamily != 6) return 0;
  struct in6_pktinfo pi;
  memset(&pi, 0, sizeof pi);
  memcpy(pi.ipi6_addr.s6_addr, src + SRC_IP, 16);
  if (is_link_local(src + SRC_IP) || is_link_local(dst + ADDR_IP)) pi.ipi6_ifindex = get_be32(src + SRC_IFINDEX);
  cm->cmsg_level = IPPROTO_IPV6;
  cm->cmsg_type = IPV6_PKTINFO;
  cm->cmsg_len = CMSG_LEN(sizeof pi);
  memcpy(CMSG_DATA(cm), &pi, sizeof pi);
  return CMSG_SPACE(sizeof pi);
}

/* Reads an optional Buffer argument: *data NULL when it is missing, undefined or null. Returns 0
 * when an exception is pending (not a Buffer), else 1. */
static int optional_buffer(napi_env env, size_t argc, napi_value *argv, size_t at, const char *name, uint8_t **data,
                           size_t *len) {
  *data = NULL;
  *len = 0;
  if (argc <= at) return 1;
  napi_valuetype t;
  if (napi_typeof(env, argv[at], &t) != napi_ok) {
    meshtun_throw_last(env, "napi_typeof");
    return 0;
  }
  if (t == napi_undefined || t == napi_null) return 1;
  return meshtun_arg_buffer(env, argv[at], name, data, len);
}

static napi_value fn_udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t family, port;
  if (argc < 2 || !meshtun_arg_int32(env, argv[0], "family", &family) ||
      !meshtun_arg_int32(env, argv[1], "port", &port))
    return NULL;
  if ((family != 4 && family != 6) || port < 0 || port > 65535) return meshtun_int(env, -EINVAL);
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return meshtun_int(env, -errno);
  sockaddr_any a;
  socklen_t alen;
  memset(&a, 0, sizeof a);
  if (family == 6) {
    int off = 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0) goto fail;
    a.v6.sin6_family = AF_INET6;
    a.v6.sin6_port = htons((uint16_t)port);
    a.v6.sin6_addr = in6addr_any;
    alen = sizeof a.v6;
  } else {
    a.v4.sin_family = AF_INET;
    a.v4.sin_port = htons((uint16_t)port);
    a.v4.sin_addr.s_addr = htonl(INADDR_ANY);
    alen = sizeof a.v4;
  }
  if (bind(fd, &a.sa, alen) < 0) goto fail;
  return meshtun_int(env, fd);
fail: {
  int e = errno;
  close(fd);
  return meshtun_int(env, -e);
}
}

static napi_value fn_udp_local_port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !meshtun_arg_int32(env, argv[0], "fd", &fd)) return NULL;
  sockaddr_any a;
  socklen_t alen = sizeof a;
  if (getsockname(fd, &a.sa, &alen) < 0) return meshtun_int(env, -errno);
  return meshtun_int(env, ntohs(a.sa.sa_family == AF_INET6 ? a.v6.sin6_port : a.v4.sin_port));
}

static napi_value fn_udp_set_pktinfo(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, family;
  if (argc < 2 || !meshtun_arg_int32(env, argv[0], "fd", &fd) || !meshtun_arg_int32(env, argv[1], "sockFamily", &family))
    return NULL;
  int on = 1;
  int r = family == 6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on)
                      : setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
  return meshtun_int(env, r == 0 ? 0 : -errno);
}

/* Control data room of one received message. */
typedef union {
  char buf[RECV_CONTROL_LEN];
  struct cmsghdr align;
} recv_control;

static napi_value fn_udp_recv(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t nbufs;
  uint32_t *sizes;
  size_t nsizes, addrsLen, localsLen;
  uint8_t *addrs, *locals;
  if (argc < 4 || !meshtun_arg_int32(env, argv[0], "fd", &fd) ||
      !meshtun_arg_array(env, argv[1], "bufs", &nbufs) ||
      !meshtun_arg_u32array(env, argv[2], "sizes", &sizes, &nsizes) ||
      !meshtun_arg_buffer(env, argv[3], "addrs", &addrs, &addrsLen) ||
      !optional_buffer(env, argc, argv, 4, "locals", &locals, &localsLen))
    return NULL;
  uint32_t n = nbufs;
  if (n > nsizes) n = (uint32_t)nsizes;
  if (n > addrsLen / ADDR_RECORD_LEN) n = (uint32_t)(addrsLen / ADDR_RECORD_LEN);
  if (locals != NULL && n > localsLen / SRC_RECORD_LEN) n = (uint32_t)(localsLen / SRC_RECORD_LEN);
  if (n > MESHTUN_MAX_BATCH) n = MESHTUN_MAX_BATCH;
  if (n == 0) return meshtun_int(env, 0);

  struct mmsghdr msgs[MESHTUN_MAX_BATCH];
  struct iovec iov[MESHTUN_MAX_BATCH];
  sockaddr_any from[MESHTUN_MAX_BATCH];
  recv_control control[MESHTUN_MAX_BATCH];
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    uint8_t *data;
    size_t len;
    NAPI_CHECK(env, napi_get_element(env, argv[1], i, &el));
    if (!meshtun_arg_buffer(env, el, "bufs[i]", &data, &len)) return NULL;
    iov[i].iov_base = data;
    iov[i].iov_len = len;
    memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    if (locals != NULL) {
      msgs[i].msg_hdr.msg_control = control[i].buf;
      msgs[i].msg_hdr.msg_controllen = sizeof control[i].buf;
    }
    msgs[i].msg_len = 0;
  }
  int r;
  do r = recvmmsg(fd, msgs, n, MSG_DONTWAIT, NULL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return meshtun_int(env, errno == EAGAIN ? 0 : -errno);
  for (int i = 0; i < r; i++) {
    sizes[i] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? 0 : msgs[i].msg_len;
    addr_to_record(&from[i], addrs + (size_t)i * ADDR_RECORD_LEN);
    if (locals != NULL) {
      control_to_source(&msgs[i].msg_hdr, locals + (size_t)i * SRC_RECORD_LEN);
      mark_repeat(addrs, locals, (uint32_t)i);
    }
  }
  return meshtun_int(env, r);
}

/* What udpRecvGro keeps between calls (in a caller-owned Buffer): the super-datagrams of the last
 * recvmmsg held in scratch, and how far splitting them has got. */
typedef struct {
  uint32_t count;                  /* super-datagrams held in scratch */
  uint32_t next;                   /* the one being split */
  uint32_t off;                    /* bytes of it already handed out */
  uint32_t len[GRO_SLOTS];         /* bytes received; GRO_TRUNCATED when it did not fit */
  uint32_t seg[GRO_SLOTS];         /* segment size; 0: one plain datagram */
  uint8_t from[GRO_SLOTS][ADDR_RECORD_LEN];
  uint8_t local[GRO_SLOTS][SRC_RECORD_LEN]; /* where it arrived (family 0: unknown) */
} gro_state;
#define GRO_STATE_LEN ((int)sizeof(gro_state))
#define GRO_TRUNCATED UINT32_MAX

static napi_value fn_udp_set_gro(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, on;
  if (argc < 2 || !meshtun_arg_int32(env, argv[0], "fd", &fd) || !meshtun_arg_int32(env, argv[1], "on", &on))
    return NULL;
  int v = on ? 1 : 0;
  return meshtun_int(env, setsockopt(fd, SOL_UDP, UDP_GRO, &v, sizeof v) == 0 ? 0 : -errno);
}

/* The output side of one udpRecvGro call: the caller's bufs/sizes/addrs/locals (locals may be
 * NULL) and how many are filled. */
typedef struct {
  napi_value bufs;
  uint32_t *sizes;
  uint8_t *addrs;
  uint8_t *locals;
  uint32_t n, used;
} gro_out;

/* Hands out segments of the held super-datagrams until they or the outputs run out. Returns 0
 * when an exception is pending, else 1. */
static int gro_drain(napi_env env, gro_state *st, const uint8_t *scratch, gro_out *o) {
  while (o->used < o->n && st->next < st->count) {
    uint32_t m = st->next, len = st->len[m], seg = st->seg[m];
    const uint8_t *src = scratch + (size_t)m * GRO_SLOT_SIZE;
    if (seg == 0) seg = len == GRO_TRUNCATED ? 0 : len;
    do {
      uint32_t k = o->used++;
      uint32_t sz = len == GRO_TRUNCATED ? 0 : len - st->off;
      if (sz > seg) sz = seg;
      napi_value el;
      uint8_t *data;
      size_t cap;
      if (napi_get_element(env, o->bufs, k, &el) != napi_ok) {
        meshtun_throw_last(env, "napi_get_element");
        return 0;
      }
      if (!meshtun_arg_buffer(env, el, "bufs[i]", &data, &cap)) return 0;
      if (sz <= cap) {
        memcpy(data, src + st->off, sz);
        o->sizes[k] = sz;
      } else {
        o->sizes[k] = 0; /* does not fit: reported as truncated, like udpRecv */
      }
      memcpy(o->addrs + (size_t)k * ADDR_RECORD_LEN, st->from[m], ADDR_RECORD_LEN);
      if (o->locals != NULL) {
        memcpy(o->locals + (size_t)k * SRC_RECORD_LEN, st->local[m], SRC_RECORD_LEN);
        mark_repeat(o->addrs, o->locals, k);
      }
      st->off += sz;
    } while (o->used < o->n && len != GRO_TRUNCATED && st->off < len);
    if (len == GRO_TRUNCATED || st->off >= len) {
      st->next++;
      st->off = 0;
    }
  }
  return 1;
}

/* Reads the UDP_GRO segment size from a received message's control data; 0 when there is none. */
static uint32_t gro_segment_size(struct msghdr *h) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      return v > 0 ? (uint32_t)v : 0;
    }
  }
  return 0;
}

static napi_value fn_udp_recv_gro(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t nbufs, *sizes, *out;
  size_t nsizes, addrsLen, scratchLen, stateLen, outLen, localsLen;
  uint8_t *addrs, *scratch, *stateBytes, *locals;
  if (argc < 7 || !meshtun_arg_int32(env, argv[0], "fd", &fd) || !meshtun_arg_array(env, argv[1], "bufs", &nbufs) ||
      !meshtun_arg_u32array(env, argv[2], "sizes", &sizes, &nsizes) ||
      !meshtun_arg_buffer(env, argv[3], "addrs", &addrs, &addrsLen) ||
      !meshtun_arg_buffer(env, argv[4], "scratch", &scratch, &scratchLen) ||
      !meshtun_arg_buffer(env, argv[5], "state", &stateBytes, &stateLen) ||
      !meshtun_arg_u32array(env, argv[6], "out", &out, &outLen) ||
      !optional_buffer(env, argc, argv, 7, "locals", &locals, &localsLen))
    return NULL;
  if (scratchLen < (size_t)GRO_SLOTS * GRO_SLOT_SIZE || stateLen < sizeof(gro_state) || outLen < GRO_OUT_LEN ||
      ((uintptr_t)stateBytes % _Alignof(gro_state)) != 0)
    return meshtun_int(env, -EINVAL);
  gro_state *st = (gro_state *)stateBytes;
  if (st->count > GRO_SLOTS || st->next > st->count) return meshtun_int(env, -EINVAL);
  out[GRO_OUT_COALESCED] = out[GRO_OUT_SEGMENTS] = out[GRO_OUT_PENDING] = 0;
  gro_out o = {argv[1], sizes, addrs, locals, nbufs, 0};
  if (o.n > nsizes) o.n = (uint32_t)nsizes;
  if (o.n > addrsLen / ADDR_RECORD_LEN) o.n = (uint32_t)(addrsLen / ADDR_RECORD_LEN);
  if (locals != NULL && o.n > localsLen / SRC_RECORD_LEN) o.n = (uint32_t)(localsLen / SRC_RECORD_LEN);
  if (o.n > MESHTUN_MAX_BATCH) o.n = MESHTUN_MAX_BATCH;
  if (o.n == 0) return meshtun_int(env, 0);

  if (!gro_drain(env, st, scratch, &o)) return NULL;
  if (o.used < o.n) {
    /* Everything held was handed out: receive more, at most one super-datagram per free output. */
    st->count = st->next = st->off = 0;
    uint32_t want = o.n - o.used;
    if (want > GRO_SLOTS) want = GRO_SLOTS;
    struct mmsghdr msgs[GRO_SLOTS];
    struct iovec iov[GRO_SLOTS];
    sockaddr_any from[GRO_SLOTS];
    recv_control control[GRO_SLOTS];
    for (uint32_t i = 0; i < want; i++) {
      iov[i].iov_base = scratch + (size_t)i * GRO_SLOT_SIZE;
      iov[i].iov_len = GRO_SLOT_SIZE;
      memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = control[i].buf;
      msgs[i].msg_hdr.msg_controllen = sizeof control[i].buf;
      msgs[i].msg_len = 0;
    }
    int r;
    do r = recvmmsg(fd, msgs, want, MSG_DONTWAIT, NULL);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (o.used > 0 || errno == EAGAIN) return meshtun_int(env, o.used);
      return meshtun_int(env, -errno);
    }
    for (int i = 0; i < r; i++) {
      uint32_t len = msgs[i].msg_len, seg = gro_segment_size(&msgs[i].msg_hdr);
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        len = GRO_TRUNCATED;
        seg = 0;
      }
      if (seg >= len) seg = 0; /* one datagram */
      st->len[i] = len;
      st->seg[i] = seg;
      addr_to_record(&from[i], st->from[i]);
      control_to_source(&msgs[i].msg_hdr, st->local[i]);
      if (seg != 0) {
        out[GRO_OUT_COALESCED]++;
        out[GRO_OUT_SEGMENTS] += (len + seg - 1) / seg;
      }
    }
    st->count = (uint32_t)r;
    if (!gro_drain(env, st, scratch, &o)) return NULL;
  }
  out[GRO_OUT_PENDING] = st->next < st->count ? 1 : 0;
  return meshtun_int(env, o.used);
}

/* The arguments udpSend and udpSendGso share: (fd, sockFamily, bufs, offsets, sizes, count). */
typedef struct {
  int32_t fd, family;
  napi_value bufs;
  uint32_t *offsets, *sizes;
  uint32_t count;
} send_batch;

/* Parses the shared arguments. Returns 0 when an exception is pending, else 1 with *err 0 or
 * -errno (count larger than an array). */
static int send_args(napi_env env, napi_value *argv, send_batch *b, int *err) {
  uint32_t nbufs;
  size_t noffsets, nsizes;
  *err = 0;
  if (!meshtun_arg_int32(env, argv[0], "fd", &b->fd) || !meshtun_arg_int32(env, argv[1], "sockFamily", &b->family) ||
      !meshtun_arg_array(env, argv[2], "bufs", &nbufs) ||
      !meshtun_arg_u32array(env, argv[3], "offsets", &b->offsets, &noffsets) ||
      !meshtun_arg_u32array(env, argv[4], "sizes", &b->sizes, &nsizes) ||
      !meshtun_arg_uint32(env, argv[5], "count", &b->count))
    return 0;
  b->bufs = argv[2];
  if (b->count > nbufs || b->count > noffsets || b->count > nsizes) *err = -EINVAL;
  return 1;
}

/* Points iov[0..n) at datagrams base..base+n of the batch. Same result convention as send_args. */
static int fill_iov(napi_env env, const send_batch *b, uint32_t base, uint32_t n, struct iovec *iov, int *err) {
  *err = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t k = base + i;
    napi_value el;
    uint8_t *data;
    size_t len;
    if (napi_get_element(env, b->bufs, k, &el) != napi_ok) {
      meshtun_throw_last(env, "napi_get_element");
      return 0;
    }
    if (!meshtun_arg_buffer(env, el, "bufs[i]", &data, &len)) return 0;
    if (b->offsets[k] > len || b->sizes[k] > len - b->offsets[k]) {
      *err = -EINVAL;
      return 1;
    }
    iov[i].iov_base = data + b->offsets[k];
    iov[i].iov_len = b->sizes[k];
  }
  return 1;
}

/* Reads a destination record argument (addr Buffer, addrOff) into dst, and points *rec at the
 * record. Same result convention as send_args. */
static int dest_arg(napi_env env, napi_value bufv, napi_value offv, int32_t family, sockaddr_any *dst,
                    socklen_t *dstLen, const uint8_t **rec, int *err) {
  uint8_t *addr;
  size_t addrLen;
  uint32_t addrOff;
  if (!meshtun_arg_buffer(env, bufv, "addr", &addr, &addrLen) || !meshtun_arg_uint32(env, offv, "addrOff", &addrOff))
    return 0;
  if (addrOff > addrLen || addrLen - addrOff < ADDR_RECORD_LEN) {
    *err = -EINVAL;
    return 1;
  }
  *rec = addr + addrOff;
  *err = record_to_addr(*rec, family, dst, dstLen);
  return 1;
}

/* Reads the optional source record arguments argv[at] (src Buffer, null or missing) and
 * argv[at + 1] (srcOff): *src is NULL when there is none. Same result convention as send_args. */
static int source_arg(napi_env env, size_t argc, napi_value *argv, size_t at, const uint8_t **src, int *err) {
  uint8_t *buf;
  size_t len;
  uint32_t off = 0;
  *src = NULL;
  *err = 0;
  if (!optional_buffer(env, argc, argv, at, "src", &buf, &len)) return 0;
  if (buf == NULL) return 1;
  if (argc > at + 1 && !meshtun_arg_uint32(env, argv[at + 1], "srcOff", &off)) return 0;
  if (off > len || len - off < SRC_RECORD_LEN) {
    *err = -EINVAL;
    return 1;
  }
  *src = buf + off;
  return 1;
}

/* Control data room of one sent message. */
typedef union {
  char buf[SEND_CONTROL_LEN];
  struct cmsghdr align;
} send_control;

/* Sends the batch in chunks of MESHTUN_MAX_BATCH; stops at the first failure (EAGAIN included)
 * after something was sent. */
static napi_value fn_udp_send(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8) return meshtun_int(env, -EINVAL);
  send_batch b;
  sockaddr_any dst;
  socklen_t dstLen = 0;
  const uint8_t *dstRec = NULL, *src = NULL;
  int err;
  if (!send_args(env, argv, &b, &err)) return NULL;
  if (err) return meshtun_int(env, err);
  if (!dest_arg(env, argv[6], argv[7], b.family, &dst, &dstLen, &dstRec, &err)) return NULL;
  if (err) return meshtun_int(env, err);
  if (!source_arg(env, argc, argv, 8, &src, &err)) return NULL;
  if (err) return meshtun_int(env, err);
  /* One source control message, shared by every message of the batch (the kernel only reads it). */
  send_control control;
  memset(&control, 0, sizeof control);
  size_t controlLen = source_cmsg(src, dstRec, b.family, &control.align);

  struct iovec iov[MESHTUN_MAX_BATCH];
  struct mmsghdr msgs[MESHTUN_MAX_BATCH];
  uint32_t sent = 0;
  while (sent < b.count) {
    uint32_t n = b.count - sent;
    if (n > MESHTUN_MAX_BATCH) n = MESHTUN_MAX_BATCH;
    if (!fill_iov(env, &b, sent, n, iov, &err)) return NULL;
    if (err) return meshtun_int(env, sent > 0 ? (int64_t)sent : err);
    for (uint32_t i = 0; i < n; i++) {
      memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
      msgs[i].msg_hdr.msg_name = &dst;
      msgs[i].msg_hdr.msg_namelen = dstLen;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      if (controlLen != 0) {
        msgs[i].msg_hdr.msg_control = control.buf;
        msgs[i].msg_hdr.msg_controllen = controlLen;
      }
    }
    uint32_t done = 0;
    while (done < n) {
      int r = sendmmsg(b.fd, msgs + done, n - done, MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || sent + done > 0) return meshtun_int(env, sent + done);
        return meshtun_int(env, -errno);
      }
      done += (uint32_t)r;
    }
    sent += n;
  }
  return meshtun_int(env, sent);
}

/* Sends one UDP_SEGMENT sendmsg of the n iovecs with the control data prepared by the caller
 * (the segment size, and a source address where there is one); returns 0 or -errno. */
static int send_gso_chunk(int fd, const sockaddr_any *dst, socklen_t dstLen, struct iovec *iov, uint32_t n,
                          send_control *control, size_t controlLen) {
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_name = (void *)dst;
  msg.msg_namelen = dstLen;
  msg.msg_iov = iov;
  msg.msg_iovlen = n;
  msg.msg_control = control->buf;
  msg.msg_controllen = controlLen;
  ssize_t r;
  do r = sendmsg(fd, &msg, MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

/* Every datagram but the last must be exactly segSize bytes (the last may be shorter). The batch
 * goes out in as few sendmsg calls as the limits allow: at most GSO_MAX_SEGMENTS segments and
 * GSO_MAX_PAYLOAD bytes per call. Returns how many datagrams were sent, or -errno when none was. */
static napi_value fn_udp_send_gso(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 9) return meshtun_int(env, -EINVAL);
  send_batch b;
  uint32_t segSize;
  struct iovec iov[GSO_MAX_SEGMENTS];
  sockaddr_any dst;
  socklen_t dstLen = 0;
  const uint8_t *dstRec = NULL, *src = NULL;
  int err;
  if (!send_args(env, argv, &b, &err)) return NULL;
  if (err) return meshtun_int(env, err);
  if (!meshtun_arg_uint32(env, argv[6], "segSize", &segSize)) return NULL;
  if (!dest_arg(env, argv[7], argv[8], b.family, &dst, &dstLen, &dstRec, &err)) return NULL;
  if (err) return meshtun_int(env, err);
  if (!source_arg(env, argc, argv, 9, &src, &err)) return NULL;
  if (err) return meshtun_int(env, err);
  if (segSize == 0 || segSize > GSO_MAX_PAYLOAD) return meshtun_int(env, -EINVAL);
  for (uint32_t i = 0; i < b.count; i++) {
    if (b.sizes[i] > segSize || (i + 1 < b.count && b.sizes[i] != segSize)) return meshtun_int(env, -EINVAL);
  }
  /* The control data every sendmsg carries: the segment size, then the source (if any). */
  send_control control;
  memset(&control, 0, sizeof control);
  struct cmsghdr *cm = &control.align;
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_SEGMENT;
  cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t seg16 = (uint16_t)segSize;
  memcpy(CMSG_DATA(cm), &seg16, sizeof seg16);
  size_t controlLen = CMSG_SPACE(sizeof(uint16_t));
  controlLen += source_cmsg(src, dstRec, b.family, (struct cmsghdr *)(control.buf + controlLen));
  uint32_t perCall = GSO_MAX_PAYLOAD / segSize;
  if (perCall > GSO_MAX_SEGMENTS) perCall = GSO_MAX_SEGMENTS;
  uint32_t sent = 0;
  while (sent < b.count) {
    uint32_t n = b.count - sent;
    if (n > perCall) n = perCall;
    if (!fill_iov(env, &b, sent, n, iov, &err)) return NULL;
    if (err == 0) err = send_gso_chunk(b.fd, &dst, dstLen, iov, n, &control, controlLen);
    if (err) {
      if (sent > 0) break;
      return meshtun_int(env, err == -EAGAIN ? 0 : err);
    }
    sent += n;
  }
  return meshtun_int(env, sent);
}

static napi_value fn_udp_gso_supported(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !meshtun_arg_int32(env, argv[0], "fd", &fd)) return NULL;
  int v = 0;
  socklen_t vlen = sizeof v;
  return meshtun_int(env, getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &vlen) == 0 ? 1 : 0);
}

static napi_value fn_udp_set_mark(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t mark;
  if (argc < 2 || !meshtun_arg_int32(env, argv[0], "fd", &fd) || !meshtun_arg_uint32(env, argv[1], "mark", &mark))
    return NULL;
  return meshtun_int(env, setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) == 0 ? 0 : -errno);
}

/* Sets one buffer size: the FORCE variant (needs CAP_NET_ADMIN) passes rmem_max/wmem_max. */
static void set_buffer(int fd, int force, int plain, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, force, &bytes, sizeof bytes) == 0) return;
  setsockopt(fd, SOL_SOCKET, plain, &bytes, sizeof bytes);
}

static napi_value fn_udp_set_buffers(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, bytes;
  uint32_t *out;
  size_t outLen;
  if (argc < 3 || !meshtun_arg_int32(env, argv[0], "fd", &fd) || !meshtun_arg_int32(env, argv[1], "bytes", &bytes) ||
      !meshtun_arg_u32array(env, argv[2], "out", &out, &outLen))
    return NULL;
  if (outLen < 2 || bytes <= 0) return meshtun_int(env, -EINVAL);
  set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, bytes);
  set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, bytes);
  int v = 0;
  socklen_t vlen = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &vlen) < 0) return meshtun_int(env, -errno);
  out[0] = (uint32_t)v;
  vlen = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &vlen) < 0) return meshtun_int(env, -errno);
  out[1] = (uint32_t)v;
  return meshtun_int(env, 0);
}

napi_status meshtun_init_udp(napi_env env, napi_value exports) {
  napi_status s;
  napi_value n;
  if ((s = napi_create_int32(env, ADDR_RECORD_LEN, &n)) != napi_ok) return s;
  if ((s = napi_set_named_property(env, exports, "ADDR_RECORD_LEN", n)) != napi_ok) return s;
  if ((s = napi_create_int32(env, MESHTUN_MAX_BATCH, &n)) != napi_ok) return s;
  if ((s = napi_set_named_property(env, exports, "MAX_BATCH", n)) != napi_ok) return s;
  if ((s = napi_create_int32(env, GSO_MAX_SEGMENTS, &n)) != napi_ok) return s;
  if ((s = napi_set_named_property(env, exports, "GSO_MAX_SEGMENTS", n)) != napi_ok) return s;
  if ((s = napi_create_int32(env, GRO_SLOTS, &n)) != napi_ok) return s;
  if ((s = napi_set_named_property(env, exports, "GRO_SLOTS", n)) != napi_ok) return s;
  if ((s = napi_create_int32(env, GRO_SLOT_SIZE, &n)) != napi_ok) return s;
  if ((s = napi_set_named_property(env, exports, "GRO_SLOT_SIZE", n)) != napi_ok) return s;
  if ((s = napi_create_int32(env, GRO_STATE_LEN, &n)) != napi_ok) return s;
  if ((s = napi_set_named_property(env, exports, "GRO_STATE_LEN", n)) != napi_ok) return s;
  if ((s = napi_create_int32(env, SRC_RECORD_LEN, &n)) != napi_ok) return s;
  if ((s = napi_set_named_property(env, exports, "SRC_RECORD_LEN", n)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "udpSetPktinfo", fn_udp_set_pktinfo)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "udpSetGro", fn_udp_set_gro)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "udpRecvGro", fn_udp_recv_gro)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "udpOpen", fn_udp_open)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "udpLocalPort", fn_udp_local_port)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "udpRecv", fn_udp_recv)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "udpSend", fn_udp_send)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "udpSendGso", fn_udp_send_gso)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "udpGsoSupported", fn_udp_gso_supported)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "udpSetMark", fn_udp_set_mark)) != napi_ok) return s;
  return meshtun_export(env, exports, "udpSetBuffers", fn_udp_set_buffers);
}
