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

  it('tessera bench writes report.html, and headless Chromium renders its tables and charts', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-report-'));
    try {
      const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'bench', 'matryoshka', '--quick', '--out', dir], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      const report = path.join(dir, 'report.html');
      expect(r.stdout).toContain(`report: ${report}`);
      const html = fs.readFileSync(report, 'utf8');
      expect(html).toMatch(/<section id="matryoshka">/);
      expect(html).toMatch(/<table>[\s\S]*speed-up vs plain-js|plain-js[\s\S]*<\/table>/);
      const chromium = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync('which', [c]).status === 0);
      if (!chromium) return; // rendering needs a browser (CI installs Debian's chromium)
      const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'];
      const dom = spawnSync(chromium, [...flags, '--dump-dom', `file://${report}`], { encoding: 'utf8', timeout: 60_000 });
      expect(dom.stdout).toMatch(/<table>/);
      expect(dom.stdout).toMatch(/<svg[^>]*>[\s\S]*<rect /);
      const png = path.join(dir, 'report.png');
      spawnSync(chromium, [...flags, '--window-size=1280,2000', `--screenshot=${png}`, `file://${report}`], { timeout: 60_000 });
      const bytes = fs.readFileSync(png);
      expect(bytes.subarray(1, 4).toString()).toBe('PNG');
      expect(bytes.length).toBeGreaterThan(20_000); // a page with content, not a blank one
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('tessera bench: --help, and bad usage exits 2', () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'bench', ...args], { encoding: 'utf8' });
    expect(cli('--help').stdout).toMatch(/^Usage: tessera bench/);
    expect(cli('--bogus').status).toBe(2);
    expect(cli('--out').status).toBe(2);
    expect(cli('nonesuch').status).toBe(2);
  });
});
