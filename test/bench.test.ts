// The benchmark harness itself: a quick run writes a well-formed JSON record and SVG chart, and the README table is
// generated from such a record.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';

import { ROOT } from './helpers.js';

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-bench-'));
afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

describe('bench harness', () => {
  it('runs a suite quickly and records medians, ratios and the bandwidth yardstick', async () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bench', 'run.mjs'), 'matryoshka', '--quick', '--out', out], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/speed-up vs plain-js/);
    const suite = JSON.parse(fs.readFileSync(path.join(out, 'matryoshka.json'), 'utf8'));
    expect(suite.machine.cores).toBeGreaterThan(0);
    const c = suite.cases[0];
    expect(Object.keys(c.medianMs)).toEqual(['plain-js', 'tessera', 'tessera-async']);
    expect(c.speedup['plain-js']).toBe(1);
    for (const n of Object.keys(c.medianMs)) {
      expect(c.medianMs[n]).toBeGreaterThan(0);
      expect(c.gbPerS[n]).toBeCloseTo(c.bytes / (c.medianMs[n] / 1e3) / 1e9, 6);
    }
    expect(c.copyGBs).toBeGreaterThan(0);
    const svg = fs.readFileSync(path.join(out, 'matryoshka.svg'), 'utf8');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.match(/<rect /g)!.length).toBeGreaterThanOrEqual(1 + 3 + 3);  // background, bars, legend
    expect(svg.trim().endsWith('</svg>')).toBe(true);

    const { tableFor, updateReadme } = await import(path.join(ROOT, 'bench', 'readme-table.mjs'));
    const readme = path.join(out, 'README.md');
    fs.writeFileSync(readme, 'before\n<!-- bench:matryoshka -->\nold\n<!-- /bench:matryoshka -->\nafter\n');
    updateReadme(out, readme);
    const text = fs.readFileSync(readme, 'utf8');
    expect(text).toContain(tableFor(suite));
    expect(text).not.toContain('old');
    expect(text).toMatch(/^before\n/);
    expect(text).toMatch(/after\n$/);
  });

  it('rejects an unknown suite with exit code 2', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bench', 'run.mjs'), 'nonesuch'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown suite: nonesuch/);
  });
});
