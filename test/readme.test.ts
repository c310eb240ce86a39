// Every ```js example in the README runs, as an ES module importing the package, and prints what it says it prints.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { ROOT } from './helpers.js';

const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const examples = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('README examples', () => {
  it('has examples', () => expect(examples.length).toBeGreaterThan(0));

  it.each(examples.map((code, i) => [i, code] as const))('example %i runs', (_, code) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // Each console.log states its output in a comment: "// [..]" (an array, compared as float32) or
    // "// prints: text". Check every printed line against its claim.
    const logs = [...code.matchAll(/console\.log\(.*\);\s*(?:\/\/ (.*))?/g)].map((m) => m[1] ?? '');
    const printed = r.stdout.trim().split('\n');
    expect(printed.length).toBe(logs.length);
    logs.forEach((claim, i) => {
      if (claim.startsWith('[')) {
        const want = JSON.parse(claim.slice(0, claim.indexOf(']') + 1)) as number[];
        const got = JSON.parse(printed[i]!.replace(/ /g, '')) as number[];
        expect(got.map((x) => Math.fround(x))).toEqual(want.map((x) => Math.fround(x)));
      } else if (claim.startsWith('prints: ')) {
        expect(printed[i]).toBe(claim.slice('prints: '.length).replace(/ \(.*\)$/, ''));
      }
    });
  });
});
