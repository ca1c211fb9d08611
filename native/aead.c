/* ChaCha20-Poly1305 for the WireGuard data plane, batched and allocation-free, through the
 * OpenSSL that node itself is built with (node exports its EVP_* symbols and ships the headers
 * under include/node/openssl, so nothing extra is linked and node:crypto uses the same code).
 *
 * A key object holds one EVP_CIPHER_CTX for sealing and one for opening, both set up once with
 * EVP_chacha20_poly1305 and the 32-byte key; per packet only the 12-byte WireGuard nonce
 * (4 zero bytes || 64-bit little-endian counter, given as two uint32 halves) is set again.
 * Packets are processed in place: ciphertext replaces plaintext at the same offset.
 *
 *   aeadKeyCreate(key: Buffer(32)) -> handle              (an external; freed by the GC)
 *   aeadKeyWipe(handle) -> 0                              frees both contexts (they cleanse the
 *       key material); later seals zero their output, later opens fail
 *   aeadSeal(handle, buf, off, len, counterLo, counterHi, ad: Buffer|null) -> len + 16
 *       encrypts buf[off, off+len) in place and writes the tag after it
 *   aeadOpen(handle, buf, off, len, counterLo, counterHi, ad: Buffer|null) -> 1 | 0
 *       len counts ciphertext and tag; decrypts in place when the tag verifies; on failure (or
 *       len < 16) returns 0 and leaves the bytes as they were
 *   aeadSealBatch(handle, bufs, offsets, lengths, counterLo, counterHi, count) -> count
 *   aeadOpenBatch(handle, bufs, offsets, lengths, counterLo, counterHi, count, ok: Uint8Array)
 *       -> number verified; ok[i] = 1 when packet i verified (decrypted in place), else 0
 *   AEAD_MAX_BATCH                                        most packets per batch call
 *
 * Ranges that do not fit their buffer, a count above AEAD_MAX_BATCH or above an array's length,
 * and arguments of the wrong type are programming errors: they throw before any packet is
 * touched. Nothing is allocated per call. */
#include "common.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(OPENSSL_VERSION_NUMBER) || OPENSSL_VERSION_NUMBER < 0x10100000L
#error "aead.c needs OpenSSL >= 1.1 headers (node's own, under include/node/openssl)"
#endif

#define AEAD_KEY_SIZE 32
#define AEAD_TAG_SIZE 16
#define AEAD_NONCE_SIZE 12
#define AEAD_NONCE_COUNTER 4 /* the 64-bit counter starts after 4 zero bytes */
#define AEAD_MAX_BATCH MESHTUN_MAX_BATCH

typedef struct {
  EVP_CIPHER_CTX *enc; /* NULL once wiped */
  EVP_CIPHER_CTX *dec;
} aead_key;

/* Marks externals made by aeadKeyCreate, so another external (a poll handle) is refused. */
static const napi_type_tag AEAD_KEY_TAG = {0x6d657368746e6165ULL, 0x61642d6b65792d31ULL};

static void key_free_contexts(aead_key *k) {
  if (k->enc) EVP_CIPHER_CTX_free(k->enc); /* the provider clears its key schedule on free */
  if (k->dec) EVP_CIPHER_CTX_free(k->dec);
  k->enc = NULL;
  k->dec = NULL;
}

static void key_finalize(napi_env env, void *data, void *hint) {
  aead_key *k = (aead_key *)data;
  key_free_contexts(k);
  OPENSSL_cleanse(k, sizeof *k);
  free(k);
}

static void write_nonce(uint8_t nonce[AEAD_NONCE_SIZE], uint32_t lo, uint32_t hi) {
  memset(nonce, 0, AEAD_NONCE_COUNTER);
  for (int i = 0; i < 4; i++) {
    nonce[AEAD_NONCE_COUNTER + i] = (uint8_t)(lo >> (8 * i));
    nonce[AEAD_NONCE_COUNTER + 4 + i] = (uint8_t)(hi >> (8 * i));
  }
}

/* Encrypts p[0, len) in place under (lo, hi) and writes the tag at p + len. 1 on success. */
static int seal_one(aead_key *k, uint8_t *p, uint32_t len, uint32_t lo, uint32_t hi,
                    const uint8_t *ad, size_t adLen) {
  if (k->enc == NULL) {
    memset(p, 0, (size_t)len + AEAD_TAG_SIZE); /* wiped: never emit plaintext */
    return 0;
  }
  uint8_t nonce[AEAD_NONCE_SIZE];
  int outl = 0;
  write_nonce(nonce, lo, hi);
  int ok = EVP_CipherInit_ex(k->enc, NULL, NULL, NULL, nonce, 1) == 1;
  if (ok && adLen > 0) ok = EVP_CipherUpdate(k->enc, NULL, &outl, ad, (int)adLen) == 1;
  if (ok && len > 0) ok = EVP_CipherUpdate(k->enc, p, &outl, p, (int)len) == 1;
  if (ok) ok = EVP_CipherFinal_ex(k->enc, p + len, &outl) == 1;
  if (ok) ok = EVP_CIPHER_CTX_ctrl(k->enc, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_SIZE, p + len) == 1;
  if (!ok) memset(p, 0, (size_t)len + AEAD_TAG_SIZE);
  return ok;
}

/* Verifies and decrypts p[0, len) (ciphertext then tag) in place. 1 when the tag verifies;
 * otherwise 0 with the ciphertext put back (ChaCha20 is a stream cipher: running the keystream
 * over the rejected output again restores it). */
static int open_one(aead_key *k, uint8_t *p, uint32_t len, uint32_t lo, uint32_t hi,
                    const uint8_t *ad, size_t adLen) {
  if (k->dec == NULL || len < AEAD_TAG_SIZE) return 0;
  uint32_t ctLen = len - AEAD_TAG_SIZE;
  uint8_t nonce[AEAD_NONCE_SIZE];
  int outl = 0;
  write_nonce(nonce, lo, hi);
  if (EVP_CipherInit_ex(k->dec, NULL, NULL, NULL, nonce, 0) != 1) return 0;
  if (EVP_CIPHER_CTX_ctrl(k->dec, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_SIZE, p + ctLen) != 1) return 0;
  if (adLen > 0 && EVP_CipherUpdate(k->dec, NULL, &outl, ad, (int)adLen) != 1) return 0;
  int decrypted = 0;
  if (ctLen > 0) {
    if (EVP_CipherUpdate(k->dec, p, &outl, p, (int)ctLen) != 1) return 0;
    decrypted = 1;
  }
  uint8_t scratch[AEAD_TAG_SIZE];
  if (EVP_CipherFinal_ex(k->dec, scratch, &outl) == 1) return 1;
  if (decrypted && EVP_CipherInit_ex(k->enc, NULL, NULL, NULL, nonce, 1) == 1) {
    EVP_CipherUpdate(k->enc, p, &outl, p, (int)ctLen);
  }
  return 0;
}

/* ---- argument helpers ---- */

static napi_value throw_range(napi_env env, const char *msg) {
  napi_throw_range_error(env, NULL, msg);
  return NULL;
}

/* The key behind a handle made by aeadKeyCreate, or NULL with a TypeError pending. */
static aead_key *arg_key(napi_env env, napi_value v) {
  bool tagged = false;
  void *data = NULL;
  if (napi_check_object_type_tag(env, v, &AEAD_KEY_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "meshtun native: argument key must be a handle from aeadKeyCreate");
    return NULL;
  }
  return (aead_key *)data;
}

static int arg_u8array(napi_env env, napi_value v, const char *name, uint8_t **data, size_t *len) {
  bool is = false;
  napi_typedarray_type type;
  void *p = NULL;
  napi_value ab;
  size_t off;
  napi_is_typedarray(env, v, &is);
  if (!is || napi_get_typedarray_info(env, v, &type, len, &p, &ab, &off) != napi_ok || type != napi_uint8_array) {
    char text[160];
    snprintf(text, sizeof text, "meshtun native: argument %s must be a Uint8Array", name);
    napi_throw_type_error(env, NULL, text);
    return 0;
  }
  *data = (uint8_t *)p;
  return 1;
}

/* Optional associated data: null/undefined -> none, else a Buffer. */
static int arg_ad(napi_env env, napi_value v, uint8_t **ad, size_t *adLen) {
  napi_valuetype t;
  *ad = NULL;
  *adLen = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t == napi_null || t == napi_undefined) return 1;
  return meshtun_arg_buffer(env, v, "ad", ad, adLen);
}

/* The batch arguments shared by seal and open: buffer pointers checked against their ranges. */
typedef struct {
  aead_key *key;
  uint8_t *ptr[AEAD_MAX_BATCH];
  uint32_t *lengths;
  uint32_t *lo;
  uint32_t *hi;
  uint32_t count;
} batch_args;

/* Reads (key, bufs, offsets, lengths, counterLo, counterHi, count); `room` is the bytes each
 * range needs past its length (the tag when sealing). Returns 0 with an exception pending. */
static int read_batch(napi_env env, napi_value *argv, uint32_t room, batch_args *b) {
  uint32_t nBufs;
  size_t nOff, nLen, nLo, nHi;
  uint32_t *offsets;
  b->key = arg_key(env, argv[0]);
  if (b->key == NULL) return 0;
  if (!meshtun_arg_array(env, argv[1], "bufs", &nBufs)) return 0;
  if (!meshtun_arg_u32array(env, argv[2], "offsets", &offsets, &nOff)) return 0;
  if (!meshtun_arg_u32array(env, argv[3], "lengths", &b->lengths, &nLen)) return 0;
  if (!meshtun_arg_u32array(env, argv[4], "counterLo", &b->lo, &nLo)) return 0;
  if (!meshtun_arg_u32array(env, argv[5], "counterHi", &b->hi, &nHi)) return 0;
  if (!meshtun_arg_uint32(env, argv[6], "count", &b->count)) return 0;
  if (b->count > AEAD_MAX_BATCH) {
    throw_range(env, "meshtun native: an AEAD batch holds at most AEAD_MAX_BATCH packets");
    return 0;
  }
  if (b->count > nBufs || b->count > nOff || b->count > nLen || b->count > nLo || b->count > nHi) {
    throw_range(env, "meshtun native: count is larger than one of the batch arrays");
    return 0;
  }
  for (uint32_t i = 0; i < b->count; i++) {
    napi_value el;
    uint8_t *data;
    size_t cap;
    if (napi_get_element(env, argv[1], i, &el) != napi_ok) {
      meshtun_throw_last(env, "napi_get_element");
      return 0;
    }
    if (!meshtun_arg_buffer(env, el, "bufs[i]", &data, &cap)) return 0;
    if ((uint64_t)offsets[i] + b->lengths[i] + room > cap) {
      throw_range(env, "meshtun native: an AEAD batch range does not fit its buffer");
      return 0;
    }
    b->ptr[i] = data + offsets[i];
  }
  return 1;
}

/* ---- exported functions ---- */

static napi_value fn_key_create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *key;
  size_t keyLen;
  if (argc < 1 || !meshtun_arg_buffer(env, argv[0], "key", &key, &keyLen)) return NULL;
  if (keyLen != AEAD_KEY_SIZE) return throw_range(env, "meshtun native: a ChaCha20-Poly1305 key is 32 bytes");
  aead_key *k = calloc(1, sizeof *k);
  if (k == NULL) return throw_range(env, "meshtun native: out of memory");
  k->enc = EVP_CIPHER_CTX_new();
  k->dec = EVP_CIPHER_CTX_new();
  const EVP_CIPHER *cipher = EVP_chacha20_poly1305();
  if (k->enc == NULL || k->dec == NULL ||
      EVP_CipherInit_ex(k->enc, cipher, NULL, key, NULL, 1) != 1 ||
      EVP_CipherInit_ex(k->dec, cipher, NULL, key, NULL, 0) != 1) {
    key_finalize(env, k, NULL);
    napi_throw_error(env, NULL, "meshtun native: OpenSSL could not set up ChaCha20-Poly1305");
    return NULL;
  }
  napi_value ext;
  if (napi_create_external(env, k, key_finalize, NULL, &ext) != napi_ok) {
    key_finalize(env, k, NULL);
    meshtun_throw_last(env, "napi_create_external");
    return NULL;
  }
  NAPI_CHECK(env, napi_type_tag_object(env, ext, &AEAD_KEY_TAG));
  return ext;
}

static napi_value fn_key_wipe(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  aead_key *k = argc < 1 ? NULL : arg_key(env, argv[0]);
  if (k == NULL) return NULL;
  key_free_contexts(k);
  return meshtun_int(env, 0);
}

/* Shared by aeadSeal / aeadOpen: (handle, buf, off, len, counterLo, counterHi, ad). */
static napi_value single(napi_env env, napi_callback_info info, int sealing) {
  size_t argc = 7;
  napi_value argv[7];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "meshtun native: expected (key, buf, off, len, counterLo, counterHi, ad?)");
    return NULL;
  }
  aead_key *k = arg_key(env, argv[0]);
  uint8_t *buf, *ad;
  size_t cap, adLen;
  uint32_t off, len, lo, hi;
  if (k == NULL || !meshtun_arg_buffer(env, argv[1], "buf", &buf, &cap) ||
      !meshtun_arg_uint32(env, argv[2], "off", &off) || !meshtun_arg_uint32(env, argv[3], "len", &len) ||
      !meshtun_arg_uint32(env, argv[4], "counterLo", &lo) || !meshtun_arg_uint32(env, argv[5], "counterHi", &hi)) {
    return NULL;
  }
  if (argc < 7) {
    ad = NULL;
    adLen = 0;
  } else if (!arg_ad(env, argv[6], &ad, &adLen)) {
    return NULL;
  }
  if (adLen > INT32_MAX) return throw_range(env, "meshtun native: associated data is too long");
  uint64_t end = (uint64_t)off + len + (sealing ? AEAD_TAG_SIZE : 0);
  if (end > cap) return throw_range(env, "meshtun native: the AEAD range does not fit its buffer");
  if (sealing) {
    seal_one(k, buf + off, len, lo, hi, ad, adLen);
    return meshtun_int(env, (int64_t)len + AEAD_TAG_SIZE);
  }
  return meshtun_int(env, open_one(k, buf + off, len, lo, hi, ad, adLen));
}

static napi_value fn_seal(napi_env env, napi_callback_info info) { return single(env, info, 1); }
static napi_value fn_open(napi_env env, napi_callback_info info) { return single(env, info, 0); }

static napi_value fn_seal_batch(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) {
    napi_throw_type_error(env, NULL, "meshtun native: expected (key, bufs, offsets, lengths, counterLo, counterHi, count)");
    return NULL;
  }
  batch_args b;
  if (!read_batch(env, argv, AEAD_TAG_SIZE, &b)) return NULL;
  for (uint32_t i = 0; i < b.count; i++) seal_one(b.key, b.ptr[i], b.lengths[i], b.lo[i], b.hi[i], NULL, 0);
  return meshtun_int(env, b.count);
}

static napi_value fn_open_batch(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8) {
    napi_throw_type_error(env, NULL, "meshtun native: expected (key, bufs, offsets, lengths, counterLo, counterHi, count, ok)");
    return NULL;
  }
  batch_args b;
  uint8_t *ok;
  size_t nOk;
  if (!read_batch(env, argv, 0, &b) || !arg_u8array(env, argv[7], "ok", &ok, &nOk)) return NULL;
  if (b.count > nOk) return throw_range(env, "meshtun native: count is larger than the ok array");
  uint32_t verified = 0;
  for (uint32_t i = 0; i < b.count; i++) {
    ok[i] = (uint8_t)open_one(b.key, b.ptr[i], b.lengths[i], b.lo[i], b.hi[i], NULL, 0);
    verified += ok[i];
  }
  return meshtun_int(env, verified);
}

napi_status meshtun_init_aead(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = meshtun_export(env, exports, "aeadKeyCreate", fn_key_create)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "aeadKeyWipe", fn_key_wipe)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "aeadSeal", fn_seal)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "aeadOpen", fn_open)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "aeadSealBatch", fn_seal_batch)) != napi_ok) return s;
  if ((s = meshtun_export(env, exports, "aeadOpenBatch", fn_open_batch)) != napi_ok) return s;
  napi_value n;
  if ((s = napi_create_uint32(env, AEAD_MAX_BATCH, &n)) != napi_ok) return s;
  return napi_set_named_property(env, exports, "AEAD_MAX_BATCH", n);
}
