// Benchmark harness: times named contenders on the same inputs in one process, alternating their order every round,
// and reports each contender's median time per call, the median of per-round speed ratios against the baseline,
// and how close each gets to the machine's limit (bytes moved over a threaded memcpy of the same size). Writes
// bench/results/<suite>.json and <suite>.svg.
//
// Absolute times on a shared 2-core machine are noise; ratios measured in the same round are the evidence.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { binding } from '../dist/native/load.js';

export const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

const now = () => Number(process.hrtime.bigint()) / 1e6;
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * The memory-bandwidth yardstick for a case that moves `bytes` (read + written): a threaded memcpy (the native pool,
 * all threads) of bytes/2 into another bytes/2, on buffers of the case's own size, so caches favour both alike.
 * Returns bytes moved per second (median of 7 after a warm-up).
 */
export function copyBandwidth(bytes) {
  const half = Math.max(64, Math.round(bytes / 2 / 64) * 64);
  const src = new Uint8Array(half).fill(1);
  const dst = new Uint8Array(half);
  const copy = binding().copyBytes;
  copy(dst, src);
  const times = [];
  for (let i = 0; i < 7; i++) {
    const t0 = now();
    copy(dst, src);
    times.push(now() - t0);
  }
  return (2 * half) / (median(times) / 1e3);
}

/** Bytes per second a threaded read of `data` (an existing buffer, e.g. the codes a scan reads) achieves. */
export function readBandwidth(data) {
  const read = binding().readBytes;
  read(data);
  const times = [];
  for (let i = 0; i < 7; i++) {
    const t0 = now();
    read(data);
    times.push(now() - t0);
  }
  return data.byteLength / (median(times) / 1e3);
}

/** Calls per measurement so that one measurement lasts at least `minMs`. */
async function calibrate(fn, minMs) {
  let calls = 1;
  for (;;) {
    const t0 = now();
    for (let i = 0; i < calls; i++) await fn();
    const ms = now() - t0;
    if (ms >= minMs || calls >= 1 << 20) return calls;
    calls = Math.max(calls * 2, Math.ceil((calls * minMs) / Math.max(ms, 1e-3)));
  }
}

/**
 * Runs one case. `contenders` maps names to functions (sync or returning a Promise), or to { run, scale, note }:
 * `scale` multiplies the measured time, for a slow peer run on a fixed fraction of the work (a linear scan of 1/16
 * of the codes has scale 16); `run` may resolve to { ms } to report its own time (a peer in another process, so
 * the pipe is not timed). `baseline` names the contender the ratios are taken against; `bytes` is what one call
 * must move (for the bandwidth figure).
 */
export async function runCase({ name, params = {}, contenders, baseline, bytes, rounds = 9, minMs = 30, extra = {} }) {
  const names = Object.keys(contenders);
  const spec = Object.fromEntries(names.map((n) => [n, typeof contenders[n] === 'function' ? { run: contenders[n] } : contenders[n]]));
  const calls = {};
  for (const n of names) calls[n] = await calibrate(spec[n].run, minMs);  // also the warm-up
  const times = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const n of order) {
      const t0 = now();
      let reported = 0;
      for (let i = 0; i < calls[n]; i++) {
        const out = await spec[n].run();
        if (out && typeof out.ms === 'number') reported += out.ms;
      }
      const ms = reported > 0 ? reported : now() - t0;
      times[n].push((ms / calls[n]) * (spec[n].scale ?? 1));
    }
  }
  const medianMs = Object.fromEntries(names.map((n) => [n, median(times[n])]));
  // Speed-up of each contender over the baseline: the median of the per-round ratios (same round, same conditions).
  const speedup = Object.fromEntries(
    names.map((n) => [n, median(times[baseline].map((b, r) => b / times[n][r]))]),
  );
  const gbPerS = bytes ? Object.fromEntries(names.map((n) => [n, bytes / (medianMs[n] / 1e3) / 1e9])) : undefined;
  const copyGBs = bytes ? copyBandwidth(bytes) / 1e9 : undefined;
  const notes = Object.fromEntries(names.filter((n) => spec[n].note).map((n) => [n, spec[n].note]));
  return { name, params, baseline, rounds, calls, medianMs, speedup, bytes, gbPerS, copyGBs, notes, ...extra };
}

export function machine(extra = {}) {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    ...extra,
  };
}

const fmt = (x, digits = 2) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(digits));

/** A terminal table: one row per case and contender. */
export function formatTable(suite) {
  const lines = [`${suite.suite}: median of ${suite.cases[0]?.rounds ?? 0} alternating rounds; speed-up vs ${suite.cases[0]?.baseline}`];
  lines.push(`machine: ${suite.machine.cpu}, ${suite.machine.cores} threads; % of copy: of a threaded memcpy moving the same bytes`);
  const rows = [['case', 'contender', 'ms/call', 'speed-up', 'GB/s', '% of copy']];
  for (const c of suite.cases) {
    for (const n of Object.keys(c.medianMs)) {
      const gb = c.gbPerS?.[n];
      rows.push([c.name, n, fmt(c.medianMs[n], 3), `${fmt(c.speedup[n])}×`, gb ? fmt(gb) : '-', gb ? `${fmt((100 * gb) / c.copyGBs, 1)}%` : '-']);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) lines.push(r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
  for (const c of suite.cases) {
    for (const [n, note] of Object.entries(c.notes ?? {})) lines.push(`  note (${c.name}, ${n}): ${note}`);
    for (const line of c.summary ?? []) lines.push(`  ${c.name}: ${line}`);
  }
  return lines.join('\n');
}

const escape = (s) => String(s).replace(/[<>&"]/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[ch]);

/** A horizontal bar chart of throughput (GB/s, or calls/s) per case and contender, with the copy bandwidth marked. */
export function renderSvg(suite) {
  const palette = ['#2563eb', '#f97316', '#16a34a', '#9333ea', '#dc2626'];
  const contenders = [...new Set(suite.cases.flatMap((c) => Object.keys(c.medianMs)))];
  const value = (c, n) => c.gbPerS?.[n] ?? 1e3 / c.medianMs[n] / 1e3;  // GB/s, else thousands of calls per second
  const max = Math.max(...suite.cases.flatMap((c) => [c.copyGBs ?? 0, ...contenders.map((n) => value(c, n) || 0)]));
  const bar = 18, gap = 10, left = 230, width = 520, top = 56;
  const groupHeight = contenders.length * bar + gap;
  const height = top + suite.cases.length * groupHeight + 40;
  const x = (v) => left + (v / max) * width;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 120}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${escape(suite.suite)}: throughput (GB/s moved), higher is better</text>`,
    `<text x="10" y="38" fill="#555">${escape(`${suite.machine.cpu}, ${suite.machine.cores} threads, ${suite.machine.node}, ${suite.date.slice(0, 10)}`)}</text>`,
  ];
  suite.cases.forEach((c, i) => {
    const y0 = top + i * groupHeight;
    if (c.copyGBs) {  // this case's memcpy yardstick
      const cx = x(c.copyGBs).toFixed(1);
      parts.push(`<line x1="${cx}" y1="${y0 - 2}" x2="${cx}" y2="${y0 + contenders.length * bar}" stroke="#111" stroke-dasharray="4 3"><title>threaded memcpy of the same bytes: ${fmt(c.copyGBs)} GB/s</title></line>`);
    }
    parts.push(`<text x="${left - 8}" y="${y0 + (contenders.length * bar) / 2 + 4}" text-anchor="end">${escape(c.name)}</text>`);
    contenders.forEach((n, j) => {
      const v = value(c, n);
      if (!v) return;
      const y = y0 + j * bar;
      parts.push(`<rect x="${left}" y="${y}" width="${Math.max(1, x(v) - left).toFixed(1)}" height="${bar - 3}" fill="${palette[j % palette.length]}"><title>${escape(`${n}: ${fmt(v)} GB/s, ${fmt(c.medianMs[n], 3)} ms`)}</title></rect>`);
      parts.push(`<text x="${(x(v) + 4).toFixed(1)}" y="${y + bar - 6}" fill="#333">${escape(`${fmt(v)} (${fmt(c.speedup[n])}×)`)}</text>`);
    });
  });
  parts.push(`<text x="10" y="${height - 22}" fill="#111">dashed: a threaded memcpy moving the same bytes (the bandwidth limit); in brackets: speed-up over ${escape(suite.cases[0]?.baseline ?? '')}</text>`);
  contenders.forEach((n, j) => {
    parts.push(`<rect x="${10 + j * 150}" y="${height - 14}" width="10" height="10" fill="${palette[j % palette.length]}"/>`);
    parts.push(`<text x="${24 + j * 150}" y="${height - 5}">${escape(n)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Runs cases one after another, prints the table, writes JSON and SVG; returns the suite record. */
export async function runSuite(suiteName, cases, { outDir = RESULTS_DIR, machineInfo = {}, log = console.log } = {}) {
  const results = [];
  for (const c of cases) {
    log(`  ${suiteName} / ${c.name} ...`);
    const result = await runCase(c);
    if (c.summarize) result.summary = c.summarize(result);  // derived figures: limits, per-core rates
    results.push(result);
  }
  const suite = { suite: suiteName, date: new Date().toISOString(), machine: machine(machineInfo), cases: results };
  fs.mkdirSync(outDir, { recursive: true });
  const write = (file, text) => {
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  };
  write(path.join(outDir, `${suiteName}.json`), `${JSON.stringify(suite, null, 2)}\n`);
  write(path.join(outDir, `${suiteName}.svg`), renderSvg(suite));
  log(formatTable(suite));
  return suite;
}
