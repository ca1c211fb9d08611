# node-gyp build of the meshtun native addon (TUN, UDP batching, readiness watchers, AEAD).
# Pure C against node_api.h (Linux only); produces build/Release/meshtun_native.node.
# aead.c uses the OpenSSL inside node (its exported EVP_* symbols, headers from include/node/openssl):
# nothing is linked, so node:crypto and the addon run the same OpenSSL.
{
  "targets": [
    {
      "target_name": "meshtun_native",
      "sources": ["native/meshtun.c", "native/tun.c", "native/udp.c", "native/poll.c", "native/aead.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
