// MultiVectorIndex: FDE candidates reranked by Chamfer equal brute-force Chamfer when every document is a candidate;
// add / remove / search against a plain-JS model; float and binary FDEs; save / load; corrupted files; disposal.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { chamferScores, DisposedError, FdeEncoder, MultiVectorIndex, TesseraFileError } from '../src/index.js';
import { loadColbert, randomFloats, sameBytes, seeded, sharedDataAvailable } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-mv-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const dim = 16;
const encoderOptions = { dim, repetitions: 4, simhashBits: 3, projectionDim: 8 };

function documents(count: number, seed: number) {
  const r = seeded(seed);
  const lengths = Int32Array.from({ length: count }, () => 1 + Math.floor(r() * 12));
  const tokens = randomFloats(lengths.reduce((s, v) => s + v, 0) * dim, seed);
  return { lengths, tokens };
}

/** Brute force: Chamfer of the query against every stored document, sorted by (score desc, id asc). */
function bruteForce(docs: Map<number, Float32Array>, query: Float32Array, k: number) {
  const ids = [...docs.keys()];
  const all = new Float32Array(ids.reduce((s, id) => s + docs.get(id)!.length, 0));
  let offset = 0;
  for (const id of ids) {
    all.set(docs.get(id)!, offset);
    offset += docs.get(id)!.length;
  }
  const scores = chamferScores(query, all, Int32Array.from(ids, (id) => docs.get(id)!.length / dim), dim);
  return ids.map((id, i) => ({ id, score: scores[i]! })).sort((a, b) => b.score - a.score || a.id - b.id).slice(0, k);
}

describe('MultiVectorIndex', () => {
  it('reranks to exact Chamfer order, through interleaved adds, removes, searches and save / load', () => {
    for (const fdeBits of [0, 2]) {
      let index = new MultiVectorIndex({ encoder: encoderOptions, fdeBits });
      const model = new Map<number, Float32Array>();
      const r = seeded(fdeBits + 1);
      let nextId = 1;
      for (let step = 0; step < 300; step++) {
        const op = r();
        if (op < 0.4) {
          const { lengths, tokens } = documents(1 + Math.floor(r() * 6), step);
          const ids = Int32Array.from(lengths, () => nextId++);
          index.add(ids, tokens, lengths);
          let offset = 0;
          lengths.forEach((n, i) => {
            model.set(ids[i]!, tokens.slice(offset * dim, (offset + n) * dim));
            offset += n;
          });
        } else if (op < 0.55 && model.size) {
          const keys = [...model.keys()];
          const ids = Int32Array.from({ length: 3 }, () => keys[Math.floor(r() * keys.length)]!);
          const unique = new Set(ids);
          expect(index.remove(ids)).toBe(unique.size);
          for (const id of unique) model.delete(id);
        } else if (op < 0.95) {
          const query = randomFloats((1 + Math.floor(r() * 5)) * dim, 1000 + step);
          const k = 1 + Math.floor(r() * 5);
          // Every document a candidate: the rerank must then be exact Chamfer, whatever the FDEs say.
          const got = index.search(query, k, { candidates: 1 << 20 });
          const want = bruteForce(model, query, k);
          expect(Array.from(got.ids)).toEqual(want.map((w) => w.id));
          expect(Array.from(got.scores)).toEqual(want.map((w) => w.score));
        } else {
          const file = path.join(tmp, `model-${fdeBits}.tsr`);
          index.save(file);
          index.dispose();
          index = MultiVectorIndex.load(file);
        }
        expect(index.size).toBe(model.size);
      }
      index.dispose();
    }
  });

  it('without rerank returns FDE inner products, and loads what it saved bit for bit (async too)', async () => {
    const encoder = new FdeEncoder(encoderOptions);
    const index = new MultiVectorIndex({ encoder });
    const { lengths, tokens } = documents(50, 7);
    index.add(Int32Array.from({ length: 50 }, (_, i) => 1000 + i), tokens, lengths);
    const query = randomFloats(4 * dim, 8);
    const plain = index.search(query, 5, { rerank: false });
    const fq = encoder.encodeQuery(query);
    const fdes = encoder.encodeDocuments(tokens, lengths);
    const best = Array.from({ length: 50 }, (_, i) => {
      let s = 0;
      for (let j = 0; j < encoder.outputDim; j++) s += fq[j]! * fdes[i * encoder.outputDim + j]!;
      return [s, 1000 + i] as const;
    }).sort((a, b) => b[0] - a[0] || a[1] - b[1])[0]!;
    expect(plain.ids[0]).toBe(best[1]);
    expect(Math.abs(plain.scores[0]! - best[0])).toBeLessThan(1e-4 * Math.abs(best[0]));
    const file = path.join(tmp, 'saved.tsr');
    await index.saveAsync(file);
    const loaded = await MultiVectorIndex.loadAsync(file);
    const a = index.search(query, 7), b = await loaded.searchAsync(query, 7);
    expect(sameBytes(a.ids, b.ids)).toBe(true);
    expect(sameBytes(a.scores, b.scores)).toBe(true);
    expect(loaded.encoder.toJSON()).toEqual(encoder.toJSON());
    expect(sameBytes(loaded.encoder.matrices().simhash, encoder.matrices().simhash)).toBe(true);
    expect(index.memoryBytes).toBeGreaterThan(tokens.byteLength);
    index.dispose();
    loaded.dispose();
    encoder.encodeQuery(query);  // an encoder passed in is not disposed with the index
    encoder.dispose();
  });

  it('finds the relevant NanoFiQA documents with binary FDEs and a Chamfer rerank', () => {
    if (!sharedDataAvailable('colbert-nanofiqa')) return;
    const data = loadColbert();
    const index = new MultiVectorIndex({ encoder: { dim: 128 }, fdeBits: 1 });
    index.add(Int32Array.from(data.docIds, Number), data.docs, data.docLengths);
    let offset = 0, hits = 0, relevant = 0;
    data.queryIds.forEach((qid, i) => {
      const n = data.queryLengths[i]!;
      const q = data.queries.subarray(offset * 128, (offset + n) * 128);
      offset += n;
      const got = new Set(Array.from(index.search(q, 10, { candidates: 20 }).ids));
      for (const doc of Object.keys(data.qrels[qid] ?? {})) {
        if (!data.docIds.includes(doc)) continue;
        relevant++;
        hits += Number(got.has(Number(doc)));
      }
    });
    expect(relevant).toBeGreaterThan(0);
    expect(hits / relevant).toBeGreaterThan(0.6);
    index.dispose();
  });

  it('rejects corrupted files, bad input, and use after dispose', async () => {
    const index = new MultiVectorIndex({ encoder: encoderOptions });
    const { lengths, tokens } = documents(5, 3);
    index.add(Int32Array.of(1, 2, 3, 4, 5), tokens, lengths);
    const file = path.join(tmp, 'fuzz.tsr');
    index.save(file);
    const good = fs.readFileSync(file);
    const r = seeded(5);
    for (let trial = 0; trial < 100; trial++) {
      const bad = Buffer.from(good);
      if (trial % 3 === 0) fs.writeFileSync(file, bad.subarray(0, Math.floor(r() * bad.length)));
      else {
        bad[Math.floor(r() * bad.length)] ^= 0x40;
        fs.writeFileSync(file, bad);
      }
      expect(() => MultiVectorIndex.load(file)).toThrow(TesseraFileError);
    }
    expect(() => index.add(Int32Array.of(1), tokens.subarray(0, dim), Int32Array.of(1))).toThrow(/repeated or already/);
    expect(() => index.add(Int32Array.of(9, 10), tokens.subarray(0, dim), Int32Array.of(1))).toThrow(/one id per document/);
    expect(() => index.add(Int32Array.of(9), tokens.subarray(0, dim), Int32Array.of(0))).toThrow(RangeError);
    expect(() => index.search(new Float32Array(0), 3)).toThrow(/one or more tokens/);
    expect(() => index.search(new Float32Array(dim), 0)).toThrow(RangeError);
    expect(() => index.search(new Float32Array(dim), 3, { candidates: 0 })).toThrow(RangeError);
    expect(() => new MultiVectorIndex({ encoder: encoderOptions, fdeBits: 5 })).toThrow(RangeError);
    expect(() => new MultiVectorIndex({ encoder: 3 } as never)).toThrow(TypeError);
    const pending = index.searchAsync(randomFloats(2 * dim, 1), 2);
    index.dispose();
    expect((await pending).ids.length).toBe(2);  // a search in flight keeps the index alive
    expect(() => index.size).toThrow(DisposedError);
    expect(() => index.search(new Float32Array(dim), 1)).toThrow(DisposedError);
  });
});
