// Integrity, checked by this browser without trusting the server: leaf
// hashes (RFC 6962) recomputed from an event's exact envelope bytes,
// inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4) checked
// against signed checkpoints, and the checkpoints' Ed25519 signatures
// (C2SP signed-note) checked with the organization's key, all with
// WebCrypto. The key is pinned in this browser the first time it is seen
// (or pasted from the operator): a server that later shows another key is
// reported, never silently trusted.

const subtle = globalThis.crypto && globalThis.crypto.subtle;

export class IntegrityError extends Error {}

export function cryptoAvailable() {
  return !!subtle;
}

export function fromBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toBase64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function toHex(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export async function sha256(...parts) {
  if (!subtle) throw new IntegrityError('this page is not in a secure context (HTTPS or localhost), so the browser offers no WebCrypto to check with');
  return new Uint8Array(await subtle.digest('SHA-256', concat(...parts)));
}

export const leafHash = (envelope) => sha256(Uint8Array.of(0), envelope);
const nodeHash = (left, right) => sha256(Uint8Array.of(1), left, right);

// Numbers, not 32-bit shifts: log sizes pass 2^31.
const odd = (n) => n % 2 === 1;
const half = (n) => Math.floor(n / 2);

// rootFromInclusion computes the root a leaf's inclusion proof leads to
// (RFC 9162 §2.1.3.2).
export async function rootFromInclusion(index, size, leaf, proof) {
  if (!(index >= 0 && index < size)) throw new IntegrityError(`position ${index} is not in a tree of ${size}`);
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new IntegrityError('the inclusion proof is too long');
    if (odd(fn) || fn === sn) {
      r = await nodeHash(p, r);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new IntegrityError('the inclusion proof is too short');
  return r;
}

// verifyConsistency checks that the tree of size first and root firstRoot
// is a prefix of the tree of size second and root secondRoot (RFC 9162
// §2.1.4.2).
export async function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  if (first > second) throw new IntegrityError(`the log shrank from ${first} to ${second} entries`);
  if (first === second) {
    if (proof.length !== 0 || !equalBytes(firstRoot, secondRoot)) throw new IntegrityError(`two different trees of the same size ${first}`);
    return;
  }
  if (first === 0) return; // the empty tree is a prefix of every tree
  if (proof.length === 0) throw new IntegrityError('the consistency proof is empty');
  // An exact power of two: the old root is itself a node of the new tree.
  let pow2 = first;
  while (pow2 > 1 && !odd(pow2)) pow2 = half(pow2);
  const path = pow2 === 1 ? [firstRoot, ...proof] : proof;
  let fn = first - 1;
  let sn = second - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) throw new IntegrityError('the consistency proof is too long');
    if (odd(fn) || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new IntegrityError('the consistency proof is too short');
  if (!equalBytes(fr, firstRoot)) throw new IntegrityError(`the log's first ${first} entries are not the ones seen before: it was rewritten`);
  if (!equalBytes(sr, secondRoot)) throw new IntegrityError('the consistency proof does not lead to the new root');
}

// parseVerifierKey reads a signed-note verifier key:
// <name>+<key hash, 8 hex>+<base64 of 0x01 ‖ Ed25519 public key>.
export function parseVerifierKey(vkey) {
  const text = vkey.trim();
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text);
  if (!m) throw new IntegrityError('not a verifier key (name+hash+key)');
  const raw = fromBase64(m[3]);
  if (raw.length !== 33 || raw[0] !== 1) throw new IntegrityError('not an Ed25519 verifier key');
  return { text, name: m[1], hash: m[2], publicKey: raw.slice(1) };
}

async function keyHash(name, publicKey) {
  const h = await sha256(new TextEncoder().encode(`${name}\n`), Uint8Array.of(1), publicKey);
  return toHex(h.slice(0, 4));
}

// openCheckpoint checks a signed checkpoint (C2SP tlog-checkpoint in a
// signed note) with a verifier key and returns {origin, size, root}.
export async function openCheckpoint(note, vkey) {
  const key = parseVerifierKey(vkey);
  if ((await keyHash(key.name, key.publicKey)) !== key.hash) throw new IntegrityError('the verifier key does not match its own hash');
  const split = note.indexOf('\n\n');
  if (split < 0) throw new IntegrityError('the checkpoint is not a signed note');
  const body = note.slice(0, split + 1);
  const lines = body.split('\n');
  const origin = lines[0];
  const size = Number(lines[1]);
  if (lines.length < 4 || !/^\d+$/.test(lines[1]) || !Number.isSafeInteger(size)) throw new IntegrityError('the checkpoint is malformed');
  const root = fromBase64(lines[2]);
  if (root.length !== 32) throw new IntegrityError('the checkpoint root is not a SHA-256 hash');
  if (origin !== key.name) throw new IntegrityError(`the checkpoint is for log ${origin}, the key for ${key.name}`);
  const publicKey = await subtle.importKey('raw', key.publicKey, { name: 'Ed25519' }, false, ['verify']);
  const message = new TextEncoder().encode(body);
  let signed = false;
  for (const line of note.slice(split + 2).split('\n')) {
    const s = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!s || s[1] !== key.name) continue;
    const sig = fromBase64(s[2]);
    if (sig.length !== 68 || toHex(sig.slice(0, 4)) !== key.hash) continue;
    if (await subtle.verify({ name: 'Ed25519' }, publicKey, sig.slice(4), message)) {
      signed = true;
      break;
    }
  }
  if (!signed) throw new IntegrityError(`the checkpoint carries no valid signature by ${key.name}`);
  return { origin, size, root };
}

// Pinned keys and the last checkpoint seen are kept per log origin in this
// browser's storage.
const keyStore = (origin) => `veritrail.key.${origin}`;
const checkpointStore = (origin) => `veritrail.checkpoint.${origin}`;

function load(key) {
  try {
    return JSON.parse(localStorage.getItem(key));
  } catch (e) {
    return null;
  }
}

function save(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch (e) { /* storage refused: nothing pinned */ }
}

export function originOfKey(vkey) {
  return parseVerifierKey(vkey).name;
}

// trustedKey returns the key to check this log with: the one pinned in this
// browser, pinning the server's on first sight. A server key other than the
// pinned one is an error, shown plainly.
export function trustedKey(serverKey) {
  const origin = originOfKey(serverKey);
  const pinned = load(keyStore(origin));
  if (!pinned) {
    save(keyStore(origin), { key: serverKey.trim(), pinnedAt: new Date().toISOString(), how: 'first seen' });
    return { key: serverKey.trim(), pinnedAt: new Date().toISOString(), how: 'first seen', firstSeen: true };
  }
  if (pinned.key !== serverKey.trim()) {
    throw new IntegrityError(`the server now shows another key for ${origin} than the one this browser pinned on ${pinned.pinnedAt}; if the operator changed it, paste the new key on the Log integrity page`);
  }
  return pinned;
}

export function pinKey(vkey) {
  const key = parseVerifierKey(vkey);
  save(keyStore(key.name), { key: key.text, pinnedAt: new Date().toISOString(), how: 'pasted' });
  return key.name;
}

export function lastCheckpoint(origin) {
  return load(checkpointStore(origin));
}

export function rememberCheckpoint(origin, cp) {
  save(checkpointStore(origin), { size: cp.size, root: toBase64(cp.root), seenAt: new Date().toISOString() });
}

// verifyEvent checks an event answered by GET /api/v1/events/{id}?proof=true
// from its raw bytes. It returns {event, content, checks}: the envelope as
// parsed from the verified bytes (what the page shows), the content bytes
// when present and verified, and what was checked.
export async function verifyEvent(raw, vkey) {
  const text = new TextDecoder().decode(raw);
  const answer = JSON.parse(text);
  const proof = answer.proof;
  if (!proof || !proof.envelope) throw new IntegrityError('the server sent no proof for this event');
  const envelope = fromBase64(proof.envelope);
  const event = JSON.parse(new TextDecoder().decode(envelope));
  // The JSON shown must be the envelope hashed: same members, same values.
  for (const [k, v] of Object.entries(event)) {
    if (JSON.stringify(answer[k]) !== JSON.stringify(v)) throw new IntegrityError(`the event's ${k} differs from its signed envelope`);
  }
  const checks = [];
  const leaf = await leafHash(envelope);
  checks.push('leaf hash recomputed from the envelope bytes');
  const cp = await openCheckpoint(proof.checkpoint, vkey);
  checks.push(`checkpoint signature checked (${cp.origin}, size ${cp.size})`);
  if (cp.size !== proof.tree_size) throw new IntegrityError(`the proof is for a tree of ${proof.tree_size}, the checkpoint has ${cp.size}`);
  const root = await rootFromInclusion(event.seq, cp.size, leaf, proof.hashes.map(fromBase64));
  if (!equalBytes(root, cp.root)) throw new IntegrityError(`the envelope of seq ${event.seq} is not the one the signed checkpoint holds: it was changed`);
  checks.push(`inclusion proof checked (seq ${event.seq} in ${cp.size})`);
  let content = null;
  if (answer.content !== undefined) {
    content = contentBytes(raw, envelope.length, answer.content_salt);
    const digest = toHex(await sha256(fromBase64(answer.content_salt), content));
    if (digest !== event.content_digest) throw new IntegrityError('the content is not the one the envelope commits to (content_digest)');
    checks.push('content checked against its salted digest');
  }
  return { event, content, checkpoint: cp, checks };
}

// contentBytes finds the content's exact bytes in the answer: the server
// splices them, as stored, between the envelope's members and its salt, so
// they start right after the envelope's members and end before the salt
// member, which is followed by the proof.
function contentBytes(raw, envelopeLength, salt) {
  const start = envelopeLength - 1 + ',"content":'.length;
  const bytes = raw instanceof Uint8Array ? raw : new Uint8Array(raw);
  const tail = new TextEncoder().encode(`,"content_salt":"${salt}","proof":{`);
  for (let end = bytes.length - tail.length; end >= start; end--) {
    let hit = true;
    for (let i = 0; i < tail.length && hit; i++) hit = bytes[end + i] === tail[i];
    if (hit) return bytes.slice(start, end);
  }
  throw new IntegrityError('the content could not be located in the answer');
}
