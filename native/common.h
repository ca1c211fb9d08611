/* Shared helpers for the meshtun native addon: argument access and result values over N-API.
 *
 * Conventions of every exported function:
 *  - System call failures are returned as negative errno numbers (never thrown), so the
 *    TypeScript side decides which failures are user mistakes and how to word them.
 *  - Arguments of the wrong type are programming errors: they throw a TypeError.
 *  - Nothing is allocated per packet: batches use fixed-size arrays on the stack.
 */
#ifndef MESHTUN_COMMON_H
#define MESHTUN_COMMON_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

/* Largest batch handled by one call (recvmmsg/sendmmsg vectors live on the stack). */
#define MESHTUN_MAX_BATCH 128

/* Bails out of a napi_callback with NULL (an exception is pending) when a call fails. */
#define NAPI_CHECK(env, call)                                   \
  do {                                                          \
    if ((call) != napi_ok) {                                    \
      meshtun_throw_last((env), #call);                         \
      return NULL;                                              \
    }                                                           \
  } while (0)

/* Throws the last N-API error (or a generic one) unless an exception is already pending. */
void meshtun_throw_last(napi_env env, const char *what);

/* Reads argument i as the given type; on a type mismatch throws a TypeError and returns 0. */
int meshtun_arg_int32(napi_env env, napi_value v, const char *name, int32_t *out);
int meshtun_arg_uint32(napi_env env, napi_value v, const char *name, uint32_t *out);
int meshtun_arg_buffer(napi_env env, napi_value v, const char *name, uint8_t **data, size_t *len);
int meshtun_arg_u32array(napi_env env, napi_value v, const char *name, uint32_t **data, size_t *len);
int meshtun_arg_array(napi_env env, napi_value v, const char *name, uint32_t *len);
/* Copies a JS string into dst (NUL-terminated, at most cap-1 bytes); fails when it does not fit. */
int meshtun_arg_string(napi_env env, napi_value v, const char *name, char *dst, size_t cap);

napi_value meshtun_int(napi_env env, int64_t v);

/* Registers the functions of each part on the module's exports. */
napi_status meshtun_init_tun(napi_env env, napi_value exports);
napi_status meshtun_init_udp(napi_env env, napi_value exports);
napi_status meshtun_init_poll(napi_env env, napi_value exports);
napi_status meshtun_init_aead(napi_env env, napi_value exports);

napi_status meshtun_export(napi_env env, napi_value exports, const char *name, napi_callback fn);

#endif
