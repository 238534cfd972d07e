// Runs the console's verifier on vectors written by verify_test.go and
// fails on any answer other than the expected one.
import { readFileSync } from 'node:fs';
import { fromBase64, equalBytes, openCheckpoint, rootFromInclusion, verifyConsistency } from '../static/lib/verify.js';

const vectors = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let failures = 0;
for (const v of vectors) {
  let ok;
  try {
    if (v.kind === 'inclusion') {
      const root = await rootFromInclusion(v.index, v.size, fromBase64(v.leaf), (v.proof || []).map(fromBase64));
      ok = equalBytes(root, fromBase64(v.root));
    } else if (v.kind === 'consistency') {
      await verifyConsistency(v.from, v.size, fromBase64(v.root1), fromBase64(v.root), (v.proof || []).map(fromBase64));
      ok = true;
    } else {
      const cp = await openCheckpoint(v.note, v.key);
      ok = cp.size === v.size && equalBytes(cp.root, fromBase64(v.root));
    }
  } catch (e) {
    ok = false;
    if (v.valid) console.log(`error: ${e.message}`);
  }
  if (ok !== v.valid) {
    failures++;
    console.log(`FAIL ${JSON.stringify({ ...v, proof: undefined, note: undefined })}: got ${ok}`);
  }
}
console.log(`${vectors.length} vectors, ${failures} failures`);
process.exit(failures ? 1 : 0);
