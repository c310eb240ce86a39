// BinaryIndex: a randomized sequence of adds, removes, searches and save/load checked against a plain-JS model,
// persistence, corrupted files, disposal and bad input.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { BinaryIndex, DisposedError, ResidualBinarizer, TesseraFileError, packSigns } from '../src/index.js';
import { hammingReference, randomFloats, sameBytes, seeded } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-index-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The model: every row kept in a Map; searches are brute force over it. */
class Model {
  rows = new Map<number, { code: Uint8Array; vector: Float32Array }>();
  constructor(readonly dim: number) {}

  search(query: Float32Array, k: number, oversample: number | undefined) {
    const sign = packSigns(query, this.dim);
    const all = [...this.rows].map(([id, r]) => ({ id, d: hammingReference(sign, 0, r.code, 0, this.dim), v: r.vector }));
    all.sort((a, b) => a.d - b.d || a.id - b.id);
    if (oversample === undefined) return all.slice(0, k).map((e) => ({ id: e.id, score: Math.fround(this.dim - 2 * e.d) }));
    const rescored = all.slice(0, Math.min(all.length, k * oversample)).map((e) => {
      let s = 0;
      for (let i = 0; i < this.dim; i++) s += query[i]! * e.v[i]!;
      return { id: e.id, score: Math.fround(s) };
    });
    rescored.sort((a, b) => b.score - a.score || a.id - b.id);
    return rescored.slice(0, k);
  }
}

describe('BinaryIndex', () => {
  it('stays consistent with a plain-JS model over thousands of interleaved add / remove / search / save / load', () => {
    const dim = 45;  // not a multiple of 8: the padding bits of every code are in play
    const r = seeded(2024);
    const model = new Model(dim);
    let index = new BinaryIndex({ dim, bits: 1, store: 'float32' });
    let nextId = 1;
    const file = path.join(tmp, 'model.tsr');
    let searches = 0;
    for (let step = 0; step < 3000; step++) {
      const op = r();
      if (op < 0.35) {
        const count = 1 + Math.floor(r() * 20);
        const ids = Int32Array.from({ length: count }, () => (r() < 0.1 && model.rows.size ? [...model.rows.keys()][0]! : nextId++));
        const vectors = randomFloats(count * dim, step);
        // Snap a few vectors to copies of others: exact ties in distance and score.
        if (count > 2) vectors.copyWithin(dim, 0, dim);
        const repeats = new Set(ids).size !== ids.length || ids.some((id) => model.rows.has(id));
        if (repeats) {
          expect(() => index.add(ids, vectors)).toThrow(RangeError);  // all or nothing
        } else {
          index.add(ids, vectors);
          const codes = packSigns(vectors, dim);
          const bytes = Math.ceil(dim / 8);
          ids.forEach((id, i) =>
            model.rows.set(id, { code: codes.slice(i * bytes, (i + 1) * bytes), vector: vectors.slice(i * dim, (i + 1) * dim) }));
        }
      } else if (op < 0.6) {
        const keys = [...model.rows.keys()];
        const ids = Int32Array.from({ length: 1 + Math.floor(r() * 8) }, () =>
          r() < 0.8 && keys.length ? keys[Math.floor(r() * keys.length)]! : -1 - Math.floor(r() * 100));
        const unique = new Set(ids);
        const expected = [...unique].filter((id) => model.rows.has(id)).length;
        expect(index.remove(ids)).toBe(expected);
        for (const id of unique) model.rows.delete(id);
      } else if (op < 0.98) {
        const nq = 1 + Math.floor(r() * 3);
        const k = 1 + Math.floor(r() * 12);
        const oversample = r() < 0.5 ? undefined : 1 + Math.floor(r() * 4);
        const queries = randomFloats(nq * dim, 10_000 + step);
        const result = index.search(queries, k, oversample === undefined ? {} : { rescore: { oversample } });
        const kk = Math.min(k, model.rows.size);
        expect(result.k).toBe(kk);
        for (let q = 0; q < nq; q++) {
          const want = model.search(queries.subarray(q * dim, (q + 1) * dim), k, oversample);
          expect(Array.from(result.ids.subarray(q * kk, (q + 1) * kk))).toEqual(want.map((w) => w.id));
          expect(Array.from(result.scores.subarray(q * kk, (q + 1) * kk))).toEqual(want.map((w) => w.score));
        }
        searches++;
      } else {
        index.save(file);
        index.dispose();
        index = BinaryIndex.load(file);
      }
      expect(index.size).toBe(model.rows.size);
    }
    expect(searches).toBeGreaterThan(1000);
    index.dispose();
  });

  it('saves and loads every store and bit width, async too, with the centre', async () => {
    const dim = 24;
    const vectors = randomFloats(300 * dim, 9);
    const ids = Int32Array.from({ length: 300 }, (_, i) => 1000 - i * 3);
    for (const store of ['none', 'float32', 'int8'] as const) {
      for (const bits of [1, 3]) {
        const center = randomFloats(dim, bits);
        const index = new BinaryIndex({ dim, bits, store, similarity: store === 'int8' ? 'l2' : 'dot', center });
        index.add(ids, vectors);
        const file = path.join(tmp, `${store}-${bits}.tsr`);
        await index.saveAsync(file);
        const loaded = await BinaryIndex.loadAsync(file);
        expect(loaded.size).toBe(300);
        expect(loaded.store).toBe(store);
        expect(loaded.bits).toBe(bits);
        expect(Array.from(loaded.binarizer.center!)).toEqual(Array.from(index.binarizer.center!));
        const queries = randomFloats(4 * dim, 77);
        const options = store === 'none' ? {} : { rescore: { oversample: 3 } };
        const a = index.search(queries, 7, options);
        const b = loaded.search(queries, 7, options);
        expect(sameBytes(a.ids, b.ids)).toBe(true);
        expect(sameBytes(a.scores, b.scores)).toBe(true);
        const c = await loaded.searchAsync(queries, 7, options);
        expect(sameBytes(c.ids, a.ids)).toBe(true);
        index.dispose();
        loaded.dispose();
      }
    }
  });

  it('int8 rescoring ranks like float32 rescoring on most queries; SDC and ADC metrics run', () => {
    const dim = 64;
    const vectors = randomFloats(2000 * dim, 5);
    const ids = Int32Array.from({ length: 2000 }, (_, i) => i);
    const f = new BinaryIndex({ dim, bits: 2, store: 'float32' });
    const q8 = new BinaryIndex({ dim, bits: 2, store: 'int8' });
    f.add(ids, vectors);
    q8.add(ids, vectors);
    expect(q8.memoryBytes).toBeLessThan(f.memoryBytes);
    const queries = randomFloats(20 * dim, 6);
    const a = f.search(queries, 10, { rescore: { oversample: 4 } });
    const b = q8.search(queries, 10, { rescore: { oversample: 4 } });
    let same = 0;
    for (let i = 0; i < a.ids.length; i++) same += Number(a.ids[i] === b.ids[i]);
    expect(same / a.ids.length).toBeGreaterThan(0.8);
    const rb = new ResidualBinarizer({ dim, bits: 2 });
    const sdc = f.search(queries, 5, { metric: 'sdc' });
    const direct = rb.sdcTopK(rb.encode(queries), rb.encode(vectors), { k: 5 });
    expect(sameBytes(sdc.ids, direct.indices)).toBe(true);  // ids equal rows here
    const adc = f.search(queries, 5, { metric: 'adc' });
    expect(sameBytes(adc.scores, rb.adcTopK(queries, rb.encode(vectors), { k: 5 }).scores)).toBe(true);
    f.dispose();
    q8.dispose();
  });

  it('with l2 similarity, sdc and adc score -‖q − reconstruction‖² (centre included)', () => {
    const dim = 20, n = 400;
    const vectors = randomFloats(n * dim, 8);
    for (let i = 0; i < vectors.length; i++) vectors[i]! += 5;  // far from zero: the centre matters
    const index = new BinaryIndex({ dim, bits: 3, similarity: 'l2' });
    index.binarizer.fit(vectors);
    index.add(Int32Array.from({ length: n }, (_, i) => i), vectors);
    const decoded = index.binarizer.decode(index.binarizer.encode(vectors));
    const queries = randomFloats(3 * dim, 9).map((v) => v + 5);
    const qDecoded = index.binarizer.decode(index.binarizer.encode(queries));
    for (const metric of ['sdc', 'adc'] as const) {
      const r = index.search(queries, 5, { metric });
      for (let q = 0; q < 3; q++) {
        const exact = Array.from({ length: n }, (_, j) => {
          let s = 0;
          for (let i = 0; i < dim; i++) {
            const a = metric === 'adc' ? queries[q * dim + i]! : qDecoded[q * dim + i]!;
            s -= (a - decoded[j * dim + i]!) ** 2;
          }
          return [s, j] as const;
        }).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
        for (let rank = 0; rank < 5; rank++) {
          const [want] = exact[rank]!;
          expect(Math.abs(r.scores[q * 5 + rank]! - want)).toBeLessThan(1e-3 * Math.max(1, Math.abs(want)));
        }
        expect(r.ids[q * 5]).toBe(exact[0]![1]);
      }
    }
    index.dispose();
  });

  it('adds codes directly, when it stores no vectors', () => {
    const dim = 16;
    const index = new BinaryIndex({ dim });
    const codes = packSigns(randomFloats(10 * dim, 1), dim);
    const rows = new Uint8Array(10 * index.binarizer.rowBytes);  // 1-bit rows: the sign plane, then alpha
    for (let i = 0; i < 10; i++) rows.set(codes.subarray(i * 2, i * 2 + 2), i * index.binarizer.rowBytes);
    index.add(Int32Array.from({ length: 10 }, (_, i) => i), rows);
    const result = index.search(rows.subarray(0, index.binarizer.rowBytes), 1);
    expect(result.ids[0]).toBe(0);
    expect(result.scores[0]).toBe(dim);
    index.dispose();
  });

  it('ranks rows with a NaN score last, by id, and still returns min(k, size) rows', () => {
    const dim = 24, n = 9;
    const index = new BinaryIndex({ dim, bits: 2 });
    const rows = index.binarizer.encode(randomFloats(n * dim, 4));
    const view = new DataView(rows.buffer, rows.byteOffset, rows.byteLength);
    const alphaAt = (i: number) => i * index.binarizer.rowBytes + index.binarizer.rowBytes - 4;
    for (const i of [2, 5, 6, 8]) view.setFloat32(alphaAt(i), NaN, true);  // their SDC scores are NaN
    const ids = Int32Array.of(40, 31, 22, 13, 4, 35, 26, 17, 8);
    index.add(ids, rows);
    const result = index.search(rows.subarray(0, index.binarizer.rowBytes), n, { metric: 'sdc' });
    expect(result.k).toBe(n);
    expect(Array.from(result.ids.subarray(5))).toEqual([8, 22, 26, 35]);  // the NaN rows, by id
    expect(Array.from(result.scores.subarray(5)).every(Number.isNaN)).toBe(true);
    expect(Array.from(result.scores.subarray(0, 5)).every(Number.isFinite)).toBe(true);
    index.dispose();
  });

  it('rejects truncated, corrupted and foreign files with TesseraFileError, never crashing', () => {
    const dim = 16;
    const index = new BinaryIndex({ dim, store: 'int8' });
    index.add(Int32Array.from([1, 2, 3]), randomFloats(3 * dim, 3));
    const file = path.join(tmp, 'fuzz.tsr');
    index.save(file);
    const good = fs.readFileSync(file);
    const r = seeded(99);
    const bad = path.join(tmp, 'bad.tsr');
    for (let trial = 0; trial < 400; trial++) {
      const bytes = Buffer.from(good);
      if (trial % 4 === 0) {
        fs.writeFileSync(bad, bytes.subarray(0, Math.floor(r() * bytes.length)));
      } else {
        for (let m = 0; m < 1 + Math.floor(r() * 3); m++) bytes[Math.floor(r() * bytes.length)] ^= 1 + Math.floor(r() * 255);
        fs.writeFileSync(bad, bytes);
      }
      expect(() => BinaryIndex.load(bad)).toThrow(TesseraFileError);
    }
    fs.writeFileSync(bad, Buffer.from('not an index at all'));
    expect(() => BinaryIndex.load(bad)).toThrow(/not a Tessera file|too short/);
    index.dispose();
  });

  it('throws on any use after dispose, and dispose is idempotent', async () => {
    const index = new BinaryIndex({ dim: 8 });
    index.add(Int32Array.from([1]), new Float32Array(8).fill(1));
    const pending = index.searchAsync(new Float32Array(8).fill(1), 1);
    index.dispose();
    index.dispose();
    expect((await pending).ids[0]).toBe(1);  // the search in flight keeps the native index alive
    expect(() => index.size).toThrow(DisposedError);
    expect(() => index.add(Int32Array.from([2]), new Float32Array(8))).toThrow(DisposedError);
    expect(() => index.search(new Float32Array(8), 1)).toThrow(DisposedError);
    expect(() => index.save(path.join(tmp, 'x.tsr'))).toThrow(DisposedError);
    await expect(index.searchAsync(new Float32Array(8), 1)).rejects.toThrow(DisposedError);
  });

  it('rejects bad input', () => {
    expect(() => new BinaryIndex({ dim: 0 })).toThrow(RangeError);
    expect(() => new BinaryIndex({ dim: 8, bits: 5 })).toThrow(RangeError);
    expect(() => new BinaryIndex({ dim: 8, store: 'f16' as never })).toThrow(RangeError);
    expect(() => new BinaryIndex({ dim: 8, metric: 'x' } as never)).toThrow(TypeError);
    const index = new BinaryIndex({ dim: 8, store: 'float32' });
    expect(() => index.add([1] as never, new Float32Array(8))).toThrow(TypeError);
    expect(() => index.add(Int32Array.from([1]), new Float32Array(9))).toThrow(/one per id/);
    expect(() => index.add(Int32Array.from([1]), new Uint8Array(5))).toThrow(/add Float32Array vectors/);
    expect(() => index.add(Int32Array.from([1]), [] as never)).toThrow(TypeError);
    expect(() => index.add(Int32Array.from([1, 1]), new Float32Array(16))).toThrow(/repeated/);
    expect(index.size).toBe(0);
    expect(() => index.search(new Float32Array(8), 0)).toThrow(RangeError);
    expect(() => index.search(new Float32Array(7), 1)).toThrow(RangeError);
    expect(() => index.search(new Float32Array(8), 1, { metric: 'cosine' as never })).toThrow(RangeError);
    expect(() => index.search(new Float32Array(8), 1, { rescore: { oversample: 0 } })).toThrow(RangeError);
    expect(() => index.search(new Uint8Array(5), 1, { rescore: { oversample: 2 } })).toThrow(/needs Float32Array/);
    expect(() => new BinaryIndex({ dim: 8 }).search(new Float32Array(8), 1, { rescore: { oversample: 2 } })).toThrow(/store/);
    expect(index.search(new Float32Array(8), 3).ids.length).toBe(0);  // empty index: no rows, no error
    index.dispose();
  });
});
