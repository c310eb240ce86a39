// What the GPU check scripts share: loading the CUDA addon and the compiled package, the size scale, fresh random
// inputs, PASS/FAIL bookkeeping, and the summary with the table printed last (and written to $OUT as JSON).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
process.env.TESSERA_NATIVE_PATH ??= path.join(root, 'build-cuda', 'Release', 'tessera_cuda.node');
export const t = (await import(path.join(root, 'dist', 'index.js'))).default;
export const { binding } = (await import(path.join(root, 'dist', 'native', 'load.js'))).default;

// --quick divides the timed sizes by 4; --scale=N by N (a small run checks the script itself).
const scaleArg = process.argv.find((a) => a.startsWith('--scale='));
const scale = scaleArg ? Number(scaleArg.slice(8)) : process.argv.includes('--quick') ? 4 : 1;
export const sized = (n) => Math.max(1, Math.round(n / scale));

export const caps = t.capabilities();
if (!caps.cuda) {
  console.log(`no usable CUDA device: ${JSON.stringify(caps)}`);
  process.exit(2);
}
console.log(`device: ${caps.cudaDevice}; CPU threads: ${caps.threads}`);

export const rng = new t.Rng(BigInt(Date.now()));  // fresh inputs every run; the seed is printed for a rerun
console.log(`seed: ${rng.seed}`);
export const now = () => Number(process.hrtime.bigint()) / 1e6;
export const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const failures = [];
export function check(name, ok, detail) {
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}${detail ? `: ${detail}` : ''}`);
  if (!ok) failures.push(name);
}

/** Writes $OUT/gpu-check-<suite>.json, prints the parity summary and the table last, and exits (1 on a failure). */
export function finish(suite, header, rows, copyRate) {
  const named = rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
  if (process.env.OUT) {
    fs.writeFileSync(path.join(process.env.OUT, `gpu-check-${suite}.json`),
      JSON.stringify({ device: caps.cudaDevice, copyBytesPerSecond: copyRate, failures, rows: named }, null, 2));
  }
  console.log(`\n${caps.cudaDevice}; copy ${(copyRate / 1e9).toFixed(0)} GB/s; parity: ${failures.length ? `${failures.length} FAILED (${failures.join('; ')})` : 'all passed'}`);
  console.log(`| ${header.join(' | ')} |\n|${header.map(() => ' --- ').join('|')}|`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  process.exit(failures.length ? 1 : 0);
}
