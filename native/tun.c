/* TUN devices: open /dev/net/tun (IFF_TUN | IFF_NO_PI, non-blocking), batched reads and writes,
 * and MTU get/set through ioctls on a control socket.
 *
 *   tunOpen() -> fd | -errno                    opens /dev/net/tun (non-blocking)
 *   tunSetIff(fd, name, nameOut: Buffer(16)) -> 0 | -errno
 *       creates or attaches interface `name` ("" or "mt%d": the kernel picks); the actual name
 *       is written to nameOut NUL-terminated
 *   tunRead(fd, bufs, offset, sizes: Uint32Array) -> count | -errno
 *   tunWrite(fd, bufs, offsets, sizes, count) -> count | -errno
 *   ctlSocket() -> fd | -errno     an AF_INET datagram socket in the calling thread's netns
 *   ifGetMtu(ctlFd, name) -> mtu | -errno
 *   ifSetMtu(ctlFd, name, mtu) -> 0 | -errno
 *
 * Reads loop until EAGAIN or the batch is full. A failure after at least one packet ends the
 * batch early and returns the count; the next call reports the error (it repeats, e.g. EBADFD
 * once the interface is deleted). Writes are one write() per packet and stop at EAGAIN; a packet
 * the kernel rejects as malformed (EINVAL: not IPv4/IPv6) counts as consumed. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define TUN_PATH "/dev/net/tun"

static napi_value fn_tun_open(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = open(TUN_PATH, O_RDWR | O_CLOEXEC | O_NONBLOCK);
  return meshtun_int(env, fd < 0 ? -errno : fd);
}

static napi_value fn_tun_set_iff(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  char name[IFNAMSIZ];
  uint8_t *out;
  size_t outLen;
  if (argc < 3 || !meshtun_arg_int32(env, argv[0], "fd", &fd) ||
      !meshtun_arg_string(env, argv[1], "name", name, sizeof name) ||
      !meshtun_arg_buffer(env, argv[2], "nameOut", &out, &outLen))
    return NULL;
  if (outLen < IFNAMSIZ) return meshtun_int(env, -EINVAL);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, strlen(name));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) return meshtun_int(env, -errno);
  memset(out, 0, IFNAMSIZ);
  memcpy(out, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ - 1));
  return meshtun_int(env, 0);
}

static napi_value fn_tun_read(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t offset, nbufs;
  uint32_t *sizes;
  size_t nsizes;
  if (argc < 4 || !meshtun_arg_int32(env, argv[0], "fd", &fd) ||
      !meshtun_arg_array(env, argv[1], "bufs", &nbufs) ||
      !meshtun_arg_uint32(env, argv[2], "offset", &offset) ||
      !meshtun_arg_u32array(env, argv[3], "sizes", &sizes, &nsizes))
    return NULL;
  uint32_t n = nbufs < nsizes ? nbufs : (uint32_t)nsizes;
  uint32_t got = 0;
  while (got < n) {
    napi_value el;
    uint8_t *data;
    size_t len;
    NAPI_CHECK(env, napi_get_element(env, argv[1], got, &el));
    if (!meshtun_arg_buffer(env, el, "bufs[i]", &data, &len)) return NULL;
    if (offset >= len) return meshtun_int(env, got > 0 ? (int64_t)got : -EINVAL);
    ssize_t r = read(fd, data + offset, len - offset);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || got > 0) break;
      return meshtun_int(env, -errno);
    }
    sizes[got++] = (uint32_t)r;
  }
  return meshtun_int(env, got);
}

static napi_value fn_tun_write(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t nbufs, count;
  uint32_t *offsets, *sizes;
  size_t noffsets, nsizes;
  if (argc < 5 || !meshtun_arg_int32(env, argv[0], "fd", &fd) ||
      !meshtun_arg_array(env, argv[1], "bufs", &nbufs) ||
      !meshtun_arg_u32array(env, argv[2], "offsets", &offsets, &noffsets) ||
      !meshtun_arg_u32array(env, argv[3], "sizes", &sizes, &nsizes) ||
      !meshtun_arg_uint32(env, argv[4], "count", &count))
    return NULL;
  if (count > nbufs || count > noffsets || count > nsizes) return meshtun_int(env, -EINVAL);
  uint32_t done = 0;
  while (done < count) {
    napi_value el;
    uint8_t *data;
    size_t len;
    NAPI_CHECK(env, napi_get_element(env, argv[1], done, &el));
    if (!meshtun_arg_buffer(env, el, "bufs[i]", &data, &len)) return NULL;
    size_t off = offsets[done], sz = sizes[done];
    if (off > len || sz > len - off) return meshtun_int(env, done > 0 ? (int64_t)done : -EINVAL);
    ssize_t r = write(fd, data + off, sz);
    if (r < 0) {
      if (errno == EINTR) continue;
      /* The kernel refuses a packet that is not IPv4/IPv6 with EINVAL: it is consumed (dropped). */
      if (errno == EINVAL) { done++; continue; }
      if (errno == EAGAIN || done > 0) break;
      return meshtun_int(env, -errno);
    }
    done++;
  }
  return meshtun_int(env, done);
}

static napi_value fn_ctl_socket(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  return meshtun_int(env, fd < 0 ? -errno : fd);
}

static napi_value mtu_ioctl(napi_env env, napi_callback_info info, int set) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  char name[IFNAMSIZ];
  int32_t mtu = 0;
  if (argc < (size_t)(set ? 3 : 2) || !meshtun_arg_int32(env, argv[0], "ctlFd", &fd) ||
      !meshtun_arg_string(env, argv[1], "name", name, sizeof name) ||
      (set && !meshtun_arg_int32(env, argv[2], "mtu", &mtu)))
    return NULL;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name));
  ifr.ifr_mtu = mtu;
  if (ioctl(fd, set ? SIOCSIFMTU : SIOCGIFMTU, &ifr) < 0) return meshtun_int(env, -errno);
  return meshtun_int(env, set ? 0 : ifr.ifr_mtu);
}

static napi_value fn_if_get_mtu(napi_env env, napi_callback_info info) { return mtu_ioctl(env, info, 0); }
static napi_value fn_if_set_mtu(napi_env env, napi_callback_info info) { return mtu_ioctl(env, info, 1); }

napi_status meshtun_init_tun(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = meshtun_export(env, exports, "tunOpen", fn_tun_open)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "tunSetIff", fn_tun_set_iff)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "tunRead", fn_tun_read)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "tunWrite", fn_tun_write)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "ctlSocket", fn_ctl_socket)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "ifGetMtu", fn_if_get_mtu)) != napi_ok) return s;
  return meshtun_export(env, exports, "ifSetMtu", fn_if_set_mtu);
}
