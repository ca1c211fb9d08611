// WireGuard's primitives: X25519, BLAKE2s (hash, HMAC, 16-byte keyed MAC), the HKDF-based KDF,
// ChaCha20-Poly1305 with WireGuard's nonce, XChaCha20-Poly1305, and key text forms.
export {
  X25519_KEY_SIZE, generatePrivateKey, clampPrivateKey, publicKey, sharedSecret, privateKeyObject,
  publicKeyObject, generateEphemeral, type PrivateKeyInput, type PublicKeyInput,
} from './x25519.js';
export { HASH_SIZE, MAC_SIZE, hash, hmac, mac16 } from './blake2s.js';
export { kdf1, kdf2, kdf3 } from './kdf.js';
export {
  AEAD_KEY_SIZE, AEAD_TAG_SIZE, AEAD_NONCE_SIZE, XAEAD_NONCE_SIZE, ChaChaPolyKey, aeadSeal, aeadOpen,
  hchacha20, xaeadSeal, xaeadOpen, aeadImplementation, aeadNativeUnavailable, type AeadImplementation,
} from './aead.js';
export {
  KEY_SIZE, KEY_BASE64_LENGTH, KEY_HEX_LENGTH, encodeBase64Key, decodeBase64Key, encodeHex, decodeHex,
  decodeHexKey, constantTimeEqual, isZero, wipe,
} from './keys.js';
