// Writes each suite's latest results (bench/results/<suite>.json) into README.md between
// <!-- bench:<suite> --> and <!-- /bench:<suite> -->, so the README's numbers are always the recorded ones.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

export function tableFor(suite) {
  const lines = suite.cases.flatMap((c) => (c.summary ?? []).map((l) => `- ${c.name}: ${l}`));
  // Contenders of every case (cases may differ: a peer that only takes float32, a limit only one case has).
  // When cases differ in baseline (a peer that cannot run the largest case), each row names its own.
  const baselines = new Set(suite.cases.map((c) => c.baseline));
  const uniform = baselines.size === 1;
  const baseline = suite.cases[0].baseline;
  const contenders = [...new Set(suite.cases.flatMap((c) => Object.keys(c.medianMs)))].filter((n) => !uniform || n !== baseline);
  const withCopy = contenders.filter((n) => suite.cases.some((c) => c.gbPerS?.[n] !== undefined));
  const head = ['case', ...(uniform ? [] : ['speed-ups vs']), ...contenders.map((n) => (uniform ? `${n} vs ${baseline}` : n)), ...withCopy.map((n) => `${n} % of copy`)];
  const rows = suite.cases.map((c) => [
    c.name,
    ...(uniform ? [] : [c.baseline]),
    ...contenders.map((n) => (c.speedup[n] === undefined || (!uniform && n === c.baseline) ? '-' : `${fmt(c.speedup[n])}×`)),
    ...withCopy.map((n) => (c.gbPerS?.[n] === undefined ? '-' : `${fmt((100 * c.gbPerS[n]) / c.copyGBs)}%`)),
  ]);
  const m = suite.machine;
  return [
    `**${suite.suite}** (${suite.date.slice(0, 10)}, ${m.cpu}, ${m.cores} threads, SIMD ${m.simd ?? '?'}, Node ${m.node}; chart: [bench/results/${suite.suite}.svg](bench/results/${suite.suite}.svg))`,
    '',
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    ...(lines.length ? ['', ...lines] : []),
  ].join('\n');
}

export function updateReadme(resultsDir = path.join(root, 'bench', 'results'), readmePath = path.join(root, 'README.md')) {
  let readme = fs.readFileSync(readmePath, 'utf8');
  for (const file of fs.readdirSync(resultsDir).filter((f) => f.endsWith('.json'))) {
    const suite = JSON.parse(fs.readFileSync(path.join(resultsDir, file), 'utf8'));
    const open = `<!-- bench:${suite.suite} -->`;
    const close = `<!-- /bench:${suite.suite} -->`;
    const start = readme.indexOf(open);
    const end = readme.indexOf(close);
    if (start < 0 || end < start) continue;
    const body = suite.markdown ?? tableFor(suite);  // report suites (quality) carry their own table
    readme = `${readme.slice(0, start + open.length)}\n${body}\n${readme.slice(end)}`;
  }
  fs.writeFileSync(readmePath, readme);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) updateReadme();
