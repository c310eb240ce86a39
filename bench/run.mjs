#!/usr/bin/env node
// Runs benchmark suites: node bench/run.mjs [suite ...] [--quick] [--out DIR]. Suites are bench/<name>.bench.mjs.
// Writes each suite's JSON and SVG, then report.html over every suite recorded in the output folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { RESULTS_DIR, runSuite } from './harness.mjs';
import { updateReadme } from './readme-table.mjs';
import { writeReport } from './report.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const available = fs.readdirSync(here).filter((f) => f.endsWith('.bench.mjs')).map((f) => f.replace('.bench.mjs', ''));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outIndex = args.indexOf('--out');
const outDir = outIndex >= 0 ? path.resolve(args[outIndex + 1]) : RESULTS_DIR;
const named = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--out');
const unknown = named.filter((n) => !available.includes(n));
if (unknown.length) {
  console.error(`unknown suite: ${unknown.join(', ')} (available: ${available.join(', ')})`);
  process.exit(2);
}
for (const name of named.length ? named : available) {
  const suite = await import(pathToFileURL(path.join(here, `${name}.bench.mjs`)).href);
  try {
    if (suite.report) await suite.report({ quick, outDir });  // a suite that is not timing, e.g. retrieval quality
    else await runSuite(name, await suite.cases({ quick }), { outDir, machineInfo: await suite.machineInfo?.() });
  } finally {
    await suite.teardown?.();
  }
}
if (outDir === RESULTS_DIR && !quick) updateReadme();  // the README shows the recorded results, never hand-copied ones
console.log(`report: ${writeReport(outDir)}`);
