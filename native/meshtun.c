/* meshtun native addon: module entry, argument helpers, and small shared functions
 * (close, strerror, errno constants). The TUN, UDP, poll and AEAD parts live in tun.c, udp.c,
 * poll.c, aead.c. */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void meshtun_throw_last(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  const char *msg = (info && info->error_message) ? info->error_message : "N-API call failed";
  char text[256];
  snprintf(text, sizeof text, "meshtun native: %s (%s)", msg, what);
  napi_throw_error(env, NULL, text);
}

static int type_error(napi_env env, const char *name, const char *expected) {
  char text[160];
  snprintf(text, sizeof text, "meshtun native: argument %s must be %s", name, expected);
  napi_throw_type_error(env, NULL, text);
  return 0;
}

int meshtun_arg_int32(napi_env env, napi_value v, const char *name, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) return type_error(env, name, "a number");
  return 1;
}

int meshtun_arg_uint32(napi_env env, napi_value v, const char *name, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) return type_error(env, name, "a number");
  return 1;
}

int meshtun_arg_buffer(napi_env env, napi_value v, const char *name, uint8_t **data, size_t *len) {
  void *p = NULL;
  if (napi_get_buffer_info(env, v, &p, len) != napi_ok) return type_error(env, name, "a Buffer");
  *data = (uint8_t *)p;
  return 1;
}

int meshtun_arg_u32array(napi_env env, napi_value v, const char *name, uint32_t **data, size_t *len) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) return type_error(env, name, "a Uint32Array");
  napi_typedarray_type type;
  void *p = NULL;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &off) != napi_ok || type != napi_uint32_array)
    return type_error(env, name, "a Uint32Array");
  *data = (uint32_t *)p;
  return 1;
}

int meshtun_arg_array(napi_env env, napi_value v, const char *name, uint32_t *len) {
  bool is = false;
  napi_is_array(env, v, &is);
  if (!is || napi_get_array_length(env, v, len) != napi_ok) return type_error(env, name, "an Array");
  return 1;
}

int meshtun_arg_string(napi_env env, napi_value v, const char *name, char *dst, size_t cap) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return type_error(env, name, "a string");
  if (n + 1 > cap) return type_error(env, name, "a shorter string");
  if (napi_get_value_string_utf8(env, v, dst, cap, &n) != napi_ok) return type_error(env, name, "a string");
  return 1;
}

napi_value meshtun_int(napi_env env, int64_t v) {
  napi_value r = NULL;
  napi_create_int64(env, v, &r);
  return r;
}

napi_status meshtun_export(napi_env env, napi_value exports, const char *name, napi_callback fn) {
  napi_value f;
  napi_status s = napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);
  if (s != napi_ok) return s;
  return napi_set_named_property(env, exports, name, f);
}

/* close(fd) -> 0 | -errno */
static napi_value fn_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !meshtun_arg_int32(env, argv[0], "fd", &fd)) return NULL;
  if (fd < 0) return meshtun_int(env, -EBADF);
  return meshtun_int(env, close(fd) == 0 ? 0 : -errno);
}

/* strerror(errno) -> message; accepts a positive or negative errno. */
static napi_value fn_strerror(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t e;
  if (argc < 1 || !meshtun_arg_int32(env, argv[0], "errno", &e)) return NULL;
  if (e < 0) e = -e;
  napi_value r;
  NAPI_CHECK(env, napi_create_string_utf8(env, strerror(e), NAPI_AUTO_LENGTH, &r));
  return r;
}

static napi_status set_int(napi_env env, napi_value obj, const char *name, int v) {
  napi_value n;
  napi_status s = napi_create_int32(env, v, &n);
  if (s != napi_ok) return s;
  return napi_set_named_property(env, obj, name, n);
}

/* The errno values the TypeScript side tells apart (os.constants.errno lacks some, e.g. EBADFD). */
static napi_status export_errno(napi_env env, napi_value exports) {
  napi_value e;
  napi_status s = napi_create_object(env, &e);
  if (s != napi_ok) return s;
  set_int(env, e, "EAGAIN", EAGAIN);
  set_int(env, e, "EINTR", EINTR);
  set_int(env, e, "EBADF", EBADF);
  set_int(env, e, "EBADFD", EBADFD);
  set_int(env, e, "EIO", EIO);
  set_int(env, e, "ENXIO", ENXIO);
  set_int(env, e, "ENODEV", ENODEV);
  set_int(env, e, "ENOENT", ENOENT);
  set_int(env, e, "EPERM", EPERM);
  set_int(env, e, "EACCES", EACCES);
  set_int(env, e, "EBUSY", EBUSY);
  set_int(env, e, "EINVAL", EINVAL);
  set_int(env, e, "EADDRINUSE", EADDRINUSE);
  set_int(env, e, "EAFNOSUPPORT", EAFNOSUPPORT);
  set_int(env, e, "EMSGSIZE", EMSGSIZE);
  set_int(env, e, "ENOBUFS", ENOBUFS);
  set_int(env, e, "ECONNREFUSED", ECONNREFUSED);
  set_int(env, e, "ENETUNREACH", ENETUNREACH);
  set_int(env, e, "EHOSTUNREACH", EHOSTUNREACH);
  set_int(env, e, "EADDRNOTAVAIL", EADDRNOTAVAIL);
  set_int(env, e, "EOPNOTSUPP", EOPNOTSUPP);
  set_int(env, e, "ENOPROTOOPT", ENOPROTOOPT);
  return napi_set_named_property(env, exports, "errno", e);
}

static napi_value init(napi_env env, napi_value exports) {
  if (meshtun_export(env, exports, "close", fn_close) != napi_ok) return NULL;
  if (meshtun_export(env, exports, "strerror", fn_strerror) != napi_ok) return NULL;
  if (export_errno(env, exports) != napi_ok) return NULL;
  if (meshtun_init_tun(env, exports) != napi_ok) return NULL;
  if (meshtun_init_udp(env, exports) != napi_ok) return NULL;
  if (meshtun_init_poll(env, exports) != napi_ok) return NULL;
  if (meshtun_init_aead(env, exports) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
