// The web client's download budget: the wasm and JS a browser fetches,
// brotli-compressed as banter serves them, must stay under 201,000 bytes
// (docs/web-client.md says what the budget buys and why it grew).
// Prints the sizes; exits 1 over budget. Run after `trunk build --release`.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

// Counted in bytes (issue 28 raised it from 199,000: docs/web-client.md).
const BUDGET = 201_000;
const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dist');
let total = 0;
for (const name of fs.readdirSync(dist).sort()) {
  if (!/\.(wasm|js|css|html)$/.test(name)) continue;
  const raw = fs.readFileSync(path.join(dist, name));
  const br = zlib.brotliCompressSync(raw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
  const gz = zlib.gzipSync(raw, { level: 9 }).length;
  const counted = /\.(wasm|js)$/.test(name);
  if (counted) total += br;
  console.log(`${name.padEnd(44)} ${String(raw.length).padStart(8)} B  gzip ${String(gz).padStart(7)}  br ${String(br).padStart(7)}`);
}
console.log(`wasm + JS, brotli: ${total} bytes (${(total / 1024).toFixed(1)} KiB) of a ${BUDGET}-byte budget`);
if (total > BUDGET) {
  console.error('over budget: the web client grew too large');
  process.exit(1);
}
