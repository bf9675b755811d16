// Cognito's Secure Remote Password sign-in (USER_SRP_AUTH, then the PASSWORD_VERIFIER challenge), with
// BigInt and WebCrypto only: the password never leaves the browser, not even over TLS.
// SRP-6a over the 3072-bit group of RFC 5054 with SHA-256, with the conventions Cognito's own SDKs use
// (numbers hashed as big-endian two's complement, HKDF info "Caldera Derived Key"). tests/unit/web/test_srp.py
// checks this file against a known answer from an independent implementation and a server-side verifier.

const N = BigInt(
  "0xFFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD" +
  "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
  "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F" +
  "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
  "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510" +
  "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7" +
  "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C" +
  "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF");
const g = 2n;
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// A number as Cognito hashes it: even-length hex, with 00 in front when the top bit is set.
function padHex(n) {
  const hex = n.toString(16);
  if (hex.length % 2) return "0" + hex;
  return "89abcdef".includes(hex[0]) ? "00" + hex : hex;
}

const bytesOfHex = (hex) => Uint8Array.from(hex.match(/../g) || [], (pair) => parseInt(pair, 16));
const hexOfBytes = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const utf8 = (text) => new TextEncoder().encode(text);
const bigOfHex = (hex) => BigInt("0x" + hex);
const base64ToBytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const bytesToBase64 = (bytes) => btoa(String.fromCharCode(...bytes));

async function sha256Hex(bytes) {
  return hexOfBytes(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

async function hmacSha256(key, data) {
  const hmacKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, data));
}

function modPow(base, exponent, modulus) {
  let result = 1n;
  base %= modulus;
  for (; exponent > 0n; exponent >>= 1n) {
    if (exponent & 1n) result = (result * base) % modulus;
    base = (base * base) % modulus;
  }
  return result;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

// "Tue Mar 3 04:05:06 UTC 2026": the day is not zero-padded, the time is.
export function cognitoTimestamp(date) {
  const two = (n) => String(n).padStart(2, "0");
  return `${DAYS[date.getUTCDay()]} ${MONTHS[date.getUTCMonth()]} ${date.getUTCDate()} ` +
         `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} UTC ${date.getUTCFullYear()}`;
}

// Step 1: a fresh secret `a` and the public value A = g^a mod N that InitiateAuth sends as SRP_A.
export function newSrpSecret() {
  for (;;) {
    const a = bigOfHex(hexOfBytes(crypto.getRandomValues(new Uint8Array(128)))) % N;
    const A = modPow(g, a, N);
    if (A % N !== 0n) return { a, srpA: A.toString(16) };
  }
}

// Step 2: the answer to PASSWORD_VERIFIER. `userId` is the challenge's USER_ID_FOR_SRP; B, salt (hex) and
// secretBlock (base64) come from the challenge too. Returns the signature and the timestamp it signs.
export async function passwordClaim({ poolId, userId, password, a, srpB, salt, secretBlock, now = new Date() }) {
  const A = modPow(g, a, N);
  const B = bigOfHex(srpB);
  if (B % N === 0n) throw new Error("sign-in failed: the server's SRP value is invalid");
  const u = bigOfHex(await sha256Hex(bytesOfHex(padHex(A) + padHex(B))));
  if (u === 0n) throw new Error("sign-in failed: the SRP exchange is invalid");
  const k = bigOfHex(await sha256Hex(bytesOfHex(padHex(N) + padHex(g))));
  const poolName = poolId.split("_")[1];
  const identity = await sha256Hex(utf8(`${poolName}${userId}:${password}`));
  const x = bigOfHex(await sha256Hex(bytesOfHex(padHex(bigOfHex(salt)) + identity)));
  const base = (((B - k * modPow(g, x, N)) % N) + N) % N;
  const S = modPow(base, a + u * x, N);
  // HKDF-SHA256: extract with u as the salt, expand with "Caldera Derived Key" || 0x01, keep 16 bytes.
  const prk = await hmacSha256(bytesOfHex(padHex(u)), bytesOfHex(padHex(S)));
  const key = (await hmacSha256(prk, utf8("Caldera Derived Key\u0001"))).slice(0, 16);
  const timestamp = cognitoTimestamp(now);
  const message = concat(utf8(poolName), utf8(userId), base64ToBytes(secretBlock), utf8(timestamp));
  return { signature: bytesToBase64(await hmacSha256(key, message)), timestamp };
}
