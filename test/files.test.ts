import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import {
  parseTesseraFile,
  readTesseraFile,
  readTesseraFileAsync,
  TesseraFileError,
  writeTesseraFile,
  writeTesseraFileAsync,
} from '../src/index.js';
import { randomFloats, sameBytes, seeded } from './helpers.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-files-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const KIND = { kind: 'test-index', maxVersion: 3 };

function sample() {
  return {
    vectors: randomFloats(1000, 1),
    codes: new Uint8Array([1, 2, 3, 4, 5]),
    empty: new Uint8Array(0),
    meta: new TextEncoder().encode(JSON.stringify({ dim: 8, seed: 42 })),
  };
}

describe('Tessera files', () => {
  it('round-trips sections, 64-byte aligned, sync and async', async () => {
    const file = path.join(dir, 'a.tsr');
    const s = sample();
    writeTesseraFile(file, 'test-index', 2, s);
    for (const read of [readTesseraFile(file, KIND), await readTesseraFileAsync(file, KIND)]) {
      expect(read.kind).toBe('test-index');
      expect(read.version).toBe(2);
      expect([...read.sections.keys()]).toEqual(['vectors', 'codes', 'empty', 'meta']);
      for (const [name, bytes] of read.sections) {
        expect(bytes.byteOffset % 64).toBe(0);
        expect(sameBytes(bytes, s[name as keyof typeof s])).toBe(true);
      }
      const v = read.sections.get('vectors')!;
      expect(new Float32Array(v.buffer, v.byteOffset, v.byteLength / 4)[7]).toBe(s.vectors[7]);
    }
    const file2 = path.join(dir, 'b.tsr');
    await writeTesseraFileAsync(file2, 'test-index', 2, s);
    expect(sameBytes(fs.readFileSync(file2), fs.readFileSync(file))).toBe(true);
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('replaces atomically and leaves the old file intact when a write fails', () => {
    const file = path.join(dir, 'c.tsr');
    writeTesseraFile(file, 'test-index', 1, { x: new Uint8Array([9]) });
    expect(() => writeTesseraFile(file, 'test-index', 1, { 'bad name': new Uint8Array(1) })).toThrow(RangeError);
    expect(() => writeTesseraFile(file, 'test-index', 1, { x: [1, 2] as never })).toThrow(TypeError);
    expect(() => writeTesseraFile(path.join(dir, 'missing', 'd.tsr'), 'test-index', 1, {})).toThrow(/ENOENT/);
    expect(readTesseraFile(file, KIND).sections.get('x')![0]).toBe(9);
    writeTesseraFile(file, 'test-index', 1, { x: new Uint8Array([10]) });
    expect(readTesseraFile(file, KIND).sections.get('x')![0]).toBe(10);
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('rejects the wrong kind and newer versions with their own codes', () => {
    const file = path.join(dir, 'e.tsr');
    writeTesseraFile(file, 'test-index', 4, {});
    expect(() => readTesseraFile(file, KIND)).toThrow(expect.objectContaining({ code: 'ERR_TESSERA_FILE_VERSION' }));
    expect(() => readTesseraFile(file, { kind: 'other', maxVersion: 9 })).toThrow(expect.objectContaining({ code: 'ERR_TESSERA_FILE_KIND' }));
    expect(() => readTesseraFile(path.join(dir, 'nope.tsr'), KIND)).toThrow(/ENOENT/);
  });

  it('detects every single-byte corruption and every truncation', () => {
    const file = path.join(dir, 'f.tsr');
    writeTesseraFile(file, 'test-index', 1, { a: new Uint8Array([1, 2, 3]), b: randomFloats(20, 3) });
    const good = new Uint8Array(fs.readFileSync(file));
    for (let i = 0; i < good.length; i++) {
      const bad = good.slice();
      bad[i] ^= 0x5a;
      expect(() => parseTesseraFile(bad, KIND), `byte ${i}`).toThrow(TesseraFileError);
    }
    for (let n = 0; n < good.length; n++) expect(() => parseTesseraFile(good.subarray(0, n), KIND)).toThrow(TesseraFileError);
  });

  it('never reads out of bounds on random garbage or mutated files', () => {
    const r = seeded(7);
    const file = path.join(dir, 'g.tsr');
    writeTesseraFile(file, 'test-index', 1, { a: new Uint8Array(100), b: new Uint8Array(7) });
    const good = new Uint8Array(fs.readFileSync(file));
    for (let trial = 0; trial < 3000; trial++) {
      const bad = trial % 3 === 0 ? Uint8Array.from({ length: Math.floor(r() * 400) }, () => Math.floor(r() * 256)) : good.slice();
      for (let k = 0; k < 1 + Math.floor(r() * 4); k++) bad[Math.floor(r() * bad.length)] = Math.floor(r() * 256);
      try {
        parseTesseraFile(bad, KIND);
      } catch (e) {
        expect(e).toBeInstanceOf(TesseraFileError);
      }
    }
  });
});
