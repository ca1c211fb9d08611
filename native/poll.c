/* Readiness watchers: a uv_poll_t on a file descriptor in Node's own event loop, calling a JS
 * function when the descriptor becomes readable/writable or fails.
 *
 *   pollStart(fd, events, callback(status, events)) -> handle | -errno
 *       events: 1 readable | 2 writable. status < 0 is a libuv error (-errno); libuv reports
 *       POLLERR (a TUN whose interface was deleted) as status -EBADF and stops the watcher.
 *   pollUpdate(handle, events) -> 0 | -errno
 *   pollRef(handle, keepAlive) -> 0      whether the watcher keeps the process alive (default yes)
 *   pollStop(handle) -> 0                idempotent; the fd may be closed right after it
 *
 * The watcher state is malloc'ed once per pollStart (not per event) and freed once libuv has
 * closed it and the JS handle was collected. A watcher whose handle is dropped without pollStop
 * keeps running (like a socket nobody closed). Exceptions thrown by the JS callback become uncaught exceptions, as for any I/O
 * callback. */
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <uv.h>

#define POLL_MAGIC 0x6d74706cu /* "mtpl": tells a watcher external from other externals */

typedef struct {
  uv_poll_t handle;
  uint32_t magic;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  int stopped;  /* pollStop or env teardown happened; uv_close is pending or done */
  int envGone;  /* the env is being torn down: no N-API calls from here on */
  int closed;   /* uv_close's callback ran */
  int orphaned; /* the JS external holding this watcher was collected (or never made) */
} poll_watcher;

/* Freed when both libuv (closed) and JS (orphaned) are done with it, so a stale handle passed
 * to pollStop again still finds valid memory. */
static void maybe_free(poll_watcher *w) {
  if (!w->closed || !w->orphaned) return;
  w->magic = 0;
  free(w);
}

static void on_closed(uv_handle_t *h) {
  poll_watcher *w = (poll_watcher *)h->data;
  if (!w->envGone) {
    if (w->callback) napi_delete_reference(w->env, w->callback);
    if (w->async) napi_async_destroy(w->env, w->async);
  }
  w->callback = NULL;
  w->async = NULL;
  w->closed = 1;
  maybe_free(w);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  poll_watcher *w = (poll_watcher *)data;
  w->orphaned = 1;
  maybe_free(w);
}

static void on_env_cleanup(void *arg) {
  poll_watcher *w = (poll_watcher *)arg;
  w->envGone = 1;
  if (w->stopped) return;
  w->stopped = 1;
  uv_poll_stop(&w->handle);
  uv_close((uv_handle_t *)&w->handle, on_closed);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  poll_watcher *w = (poll_watcher *)h->data;
  if (w->stopped || w->envGone) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[2], result;
  if (napi_get_reference_value(env, w->callback, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &recv) == napi_ok && napi_create_int32(env, status, &argv[0]) == napi_ok &&
      napi_create_int32(env, events, &argv[1]) == napi_ok) {
    napi_status s = napi_make_callback(env, w->async, recv, cb, 2, argv, &result);
    if (s == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static poll_watcher *watcher_arg(napi_env env, napi_value v) {
  napi_valuetype t;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok ||
      p == NULL || ((poll_watcher *)p)->magic != POLL_MAGIC) {
    napi_throw_type_error(env, NULL, "meshtun native: argument handle must be a poll handle from pollStart");
    return NULL;
  }
  return (poll_watcher *)p;
}

static int uv_events(int32_t events) {
  return ((events & 1) ? UV_READABLE : 0) | ((events & 2) ? UV_WRITABLE : 0) | UV_DISCONNECT;
}

static napi_value fn_poll_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, events;
  napi_valuetype t;
  if (argc < 3 || !meshtun_arg_int32(env, argv[0], "fd", &fd) || !meshtun_arg_int32(env, argv[1], "events", &events))
    return NULL;
  if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "meshtun native: argument callback must be a function");
    return NULL;
  }
  if (fd < 0) return meshtun_int(env, -EBADF);
  uv_loop_t *loop = NULL;
  NAPI_CHECK(env, napi_get_uv_event_loop(env, &loop));
  poll_watcher *w = (poll_watcher *)calloc(1, sizeof *w);
  if (w == NULL) return meshtun_int(env, -ENOMEM);
  int r = uv_poll_init(loop, &w->handle, fd);
  if (r < 0) {
    free(w);
    return meshtun_int(env, r);
  }
  w->handle.data = w;
  w->magic = POLL_MAGIC;
  w->orphaned = 1; /* until the external exists */
  w->env = env;
  napi_value name;
  if (napi_create_reference(env, argv[2], 1, &w->callback) != napi_ok ||
      napi_create_string_utf8(env, "meshtun:poll", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->async) != napi_ok) {
    w->stopped = 1;
    uv_close((uv_handle_t *)&w->handle, on_closed);
    meshtun_throw_last(env, "pollStart");
    return NULL;
  }
  r = uv_poll_start(&w->handle, uv_events(events), on_poll);
  if (r < 0) {
    w->stopped = 1;
    uv_close((uv_handle_t *)&w->handle, on_closed);
    return meshtun_int(env, r);
  }
  napi_value ext;
  if (napi_create_external(env, w, on_finalize, NULL, &ext) != napi_ok) {
    w->stopped = 1;
    uv_poll_stop(&w->handle);
    uv_close((uv_handle_t *)&w->handle, on_closed);
    meshtun_throw_last(env, "napi_create_external");
    return NULL;
  }
  w->orphaned = 0;
  napi_add_env_cleanup_hook(env, on_env_cleanup, w);
  return ext;
}

static napi_value fn_poll_update(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t events;
  if (argc < 2) return meshtun_int(env, -EINVAL);
  poll_watcher *w = watcher_arg(env, argv[0]);
  if (w == NULL || !meshtun_arg_int32(env, argv[1], "events", &events)) return NULL;
  if (w->stopped) return meshtun_int(env, -EBADF);
  return meshtun_int(env, uv_poll_start(&w->handle, uv_events(events), on_poll));
}

static napi_value fn_poll_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool keep = true;
  if (argc < 2) return meshtun_int(env, -EINVAL);
  poll_watcher *w = watcher_arg(env, argv[0]);
  if (w == NULL) return NULL;
  NAPI_CHECK(env, napi_get_value_bool(env, argv[1], &keep));
  if (w->stopped) return meshtun_int(env, -EBADF);
  if (keep) uv_ref((uv_handle_t *)&w->handle);
  else uv_unref((uv_handle_t *)&w->handle);
  return meshtun_int(env, 0);
}

static napi_value fn_poll_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return meshtun_int(env, -EINVAL);
  poll_watcher *w = watcher_arg(env, argv[0]);
  if (w == NULL) return NULL;
  if (!w->stopped) {
    w->stopped = 1;
    napi_remove_env_cleanup_hook(env, on_env_cleanup, w);
    uv_poll_stop(&w->handle);
    uv_close((uv_handle_t *)&w->handle, on_closed);
  }
  return meshtun_int(env, 0);
}

napi_status meshtun_init_poll(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = meshtun_export(env, exports, "pollStart", fn_poll_start)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "pollUpdate", fn_poll_update)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "pollRef", fn_poll_ref)) != napi_ok) return s;
  return meshtun_export(env, exports, "pollStop", fn_poll_stop);
}
