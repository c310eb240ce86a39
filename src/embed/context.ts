// Training-free context extension by rewriting a loaded ONNX graph (LongEmbed, Zhu et al. 2024, arXiv 2404.12096,
// surveys these for embedding models):
//   - temperature: TempScale (Zhou et al. 2024, arXiv 2410.24200): every Softmax input is divided by τ;
//   - positionTable: a learned absolute position table (BERT's position_embeddings) stretched to more rows by
//     interpolation (LongEmbed's PI; Long-CLIP's knowledge-preserved stretching with `keep`), and the constant
//     position-id buffer beside it (BERT's position_ids [1, P]) extended to match;
//   - rope: a rotary model's inverse frequencies replaced (NTK, YaRN, linear... from ropeFrequencies), and its cos /
//     sin caches recomputed for the new length.
// A rewrite whose pattern the graph lacks refuses with an error naming what it looked for.
import { interpolatePositionTable } from '../rope/tables.js';
import { expectInteger, expectOptions, typeName } from '../core/validate.js';
import { floatsOf, int64sOf, OnnxGraph, TENSOR_FLOAT, TENSOR_INT64, type Initializer } from './onnx-graph.js';

export interface ContextExtensionOptions {
  /** TempScale: divide every Softmax's input by this (τ < 1 sharpens attention). */
  temperature?: number;
  /** Stretch the absolute position table to `rows` rows. `name` picks the table (default: the one float
   *  initializer of rank 2 whose name mentions "position"); `keep` rows are copied unchanged (Long-CLIP: 20). */
  positionTable?: { rows: number; keep?: number; method?: 'linear' | 'nearest'; name?: string };
  /** Replace the rotary inverse frequencies (initializers named like inv_freq) and recompute cos / sin caches
   *  (initializers named like cos_cached / sin_cached) for `maxPositions` rows. */
  rope?: { invFreq: Float64Array | Float32Array | readonly number[]; maxPositions?: number };
}

function fail(what: string, g: OnnxGraph): never {
  const names = [...g.initializers.values()].map((t) => `${t.name} [${t.dims.join(', ')}]`).slice(0, 12).join(', ');
  throw new Error(`extendContext: ${what} (initializers: ${names || 'none'}; ops: ${[...new Set(g.nodes.map((n) => n.op))].join(', ')})`);
}

function floatInitializer(name: string, dims: number[], values: Float32Array): Initializer {
  return { name, dims, dataType: TENSOR_FLOAT, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function temperature(g: OnnxGraph, tau: number): void {
  const softmaxes = g.nodes.filter((n) => n.op === 'Softmax');
  if (softmaxes.length === 0) fail('temperature needs Softmax nodes and the graph has none', g);
  const inverse = g.fresh('tessera_inverse_temperature');
  g.initializers.set(inverse, floatInitializer(inverse, [], Float32Array.of(1 / tau)));
  for (const s of softmaxes) {
    const input = s.inputs[0]!;
    const scaled = g.fresh(`${input}_tempscaled`);
    const mul = OnnxGraph.node('Mul', [input, inverse], [scaled], g.fresh(`${s.name}_tempscale`));
    OnnxGraph.rewire(s, input, scaled);
    g.nodes.splice(g.nodes.indexOf(s), 0, mul);
  }
}

function positionTable(g: OnnxGraph, o: NonNullable<ContextExtensionOptions['positionTable']>): void {
  const candidates = [...g.initializers.values()].filter((t) =>
    o.name ? t.name === o.name : t.dataType === TENSOR_FLOAT && t.dims.length === 2 && /position/i.test(t.name));
  if (candidates.length !== 1) {
    fail(o.name ? `no float initializer named "${o.name}"` : `expected one rank-2 float initializer named like "position…", found ${candidates.length}`, g);
  }
  const table = candidates[0]!;
  if (table.dataType !== TENSOR_FLOAT || table.dims.length !== 2) fail(`"${table.name}" is not a [positions, dim] float table`, g);
  const [rows, dim] = table.dims as [number, number];
  const newRows = expectInteger(o.rows, 'positionTable.rows', rows + 1, 1 << 24);
  const stretched = interpolatePositionTable(floatsOf(table), {
    rows, dim, newRows, ...(o.keep === undefined ? {} : { keep: o.keep }), ...(o.method === undefined ? {} : { method: o.method }),
  });
  g.initializers.set(table.name, floatInitializer(table.name, [newRows, dim], stretched));
  // The constant position ids a BERT graph slices per input ([1, P] = 0 … P − 1) must reach the new length too.
  for (const t of g.initializers.values()) {
    if (t.dataType !== TENSOR_INT64 || !/position/i.test(t.name)) continue;
    const ids = int64sOf(t);
    const count = ids.length;
    if (count !== rows || !ids.every((v, i) => v === i)) continue;
    const extended = Buffer.alloc(newRows * 8);
    for (let i = 0; i < newRows; i++) extended.writeBigInt64LE(BigInt(i), i * 8);
    g.initializers.set(t.name, { ...t, dims: t.dims.map((d) => (d === rows ? newRows : d)), data: new Uint8Array(extended) });
  }
}

function rope(g: OnnxGraph, o: NonNullable<ContextExtensionOptions['rope']>): void {
  const invFreq = Float64Array.from(o.invFreq as ArrayLike<number>);
  if (!invFreq.every(Number.isFinite)) throw new RangeError('"rope.invFreq" must be finite');
  const half = invFreq.length;
  let replaced = 0;
  for (const t of [...g.initializers.values()]) {
    if (t.dataType !== TENSOR_FLOAT) continue;
    if (/inv_?freq/i.test(t.name)) {
      const n = t.data.length / 4;
      if (n !== half) throw new RangeError(`"rope.invFreq" holds ${half} values; the model's "${t.name}" holds ${n}`);
      g.initializers.set(t.name, floatInitializer(t.name, t.dims, Float32Array.from(invFreq)));
      replaced++;
    } else if (/(cos|sin)_?(cached|cache)/i.test(t.name) && t.dims.length >= 2) {
      // [positions, half] or [positions, 2·half] (the neox layout repeats the frequencies), maybe with leading 1s.
      const width = t.dims[t.dims.length - 1]!, rows = t.dims[t.dims.length - 2]!;
      if (width !== half && width !== 2 * half) throw new RangeError(`"${t.name}" is [${t.dims.join(', ')}]: its last dimension is neither ${half} nor ${2 * half}`);
      const newRows = o.maxPositions === undefined ? rows : expectInteger(o.maxPositions, 'rope.maxPositions', 1, 1 << 24);
      const cos = /cos/i.test(t.name);
      const out = new Float32Array(newRows * width);
      for (let p = 0; p < newRows; p++) {
        for (let i = 0; i < width; i++) {
          const angle = p * invFreq[i % half]!;
          out[p * width + i] = cos ? Math.cos(angle) : Math.sin(angle);
        }
      }
      const dims = [...t.dims];
      dims[dims.length - 2] = newRows;
      g.initializers.set(t.name, floatInitializer(t.name, dims, out));
      replaced++;
    }
  }
  if (replaced === 0) fail('rope needs initializers named like inv_freq or cos_cached / sin_cached', g);
}

/**
 * Returns a rewritten copy of an ONNX model (bytes) that reads longer inputs or attends at another temperature.
 * Rewrites apply in the order temperature, positionTable, rope; each refuses when its pattern is absent.
 */
export function extendContext(model: Uint8Array, options: ContextExtensionOptions): Uint8Array {
  if (!(model instanceof Uint8Array)) throw new TypeError(`Expected "model" to be a Uint8Array of ONNX bytes, got ${typeName(model)}`);
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  const o = expectOptions<ContextExtensionOptions>(options, 'options', ['temperature', 'positionTable', 'rope']);
  if (o.temperature === undefined && o.positionTable === undefined && o.rope === undefined) {
    throw new RangeError('extendContext: give "temperature", "positionTable" or "rope"');
  }
  const g = new OnnxGraph(model);
  if (o.temperature !== undefined) {
    if (typeof o.temperature !== 'number') throw new TypeError(`Expected "temperature" to be a number, got ${typeName(o.temperature)}`);
    if (!(o.temperature > 0) || !Number.isFinite(o.temperature)) throw new RangeError(`"temperature" must be finite and above 0, got ${o.temperature}`);
    temperature(g, o.temperature);
  }
  if (o.positionTable !== undefined) positionTable(g, o.positionTable);
  if (o.rope !== undefined) rope(g, o.rope);
  return g.serialize();
}
