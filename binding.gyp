# node-gyp build of the meshtun native addon (TUN, UDP batching, readiness watchers).
# Pure C against node_api.h (Linux only); produces build/Release/meshtun_native.node.
{
  "targets": [
    {
      "target_name": "meshtun_native",
      "sources": ["native/meshtun.c", "native/tun.c", "native/udp.c", "native/poll.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
