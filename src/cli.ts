#!/usr/bin/env node
// The `tessera` command. Exit codes: 0 success, 1 failure (for example the addon does not load), 2 bad usage.
import { capabilities } from './core/runtime.js';
import { addon } from './native/load.js';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

const HELP = `Usage: tessera <command> [options]

Commands:
  info        what this installation can do: addon, SIMD level, threads, CUDA

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

function usage(message: string): number {
  process.stderr.write(`tessera: ${message}\n\n${HELP}`);
  return EXIT_USAGE;
}

export function main(argv: string[]): number {
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
  return usage(`unknown command: ${command}`);
}

function capabilitiesVersion(): string {
  // The package's version without loading the addon, so --version works even when the addon does not.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../package.json') as { version: string }).version;
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`tessera: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = EXIT_FAILURE;
  }
}
