// An optional learned transform applied before binarization (BEBR's MLP), run with onnxruntime-node.
//
// onnxruntime-node's run() computes on the calling thread behind its Promise, so a large batch is cut into chunks
// of `chunkRows` rows with a yield to the event loop between them: no single block is longer than one chunk.
import { expectInteger, expectOptions, expectTypedArray, expectFloat32Array, required } from '../core/validate.js';

export interface OnnxTransformOptions {
  /** An ONNX model file path, or its bytes: float32 input [batch, inputDim] to float32 output [batch, dim]. */
  model: string | Uint8Array;
  inputDim: number;
  /** Input and output names (default: the model's first of each). */
  input?: string;
  output?: string;
  /** Rows per run() call (default 256). */
  chunkRows?: number;
  /** onnxruntime's intra-op threads (default: its own choice). */
  threads?: number;
}

type Ort = typeof import('onnxruntime-node');
type Session = import('onnxruntime-node').InferenceSession;

export class OnnxTransform {
  readonly inputDim: number;
  readonly outputDim: number;
  readonly #ort: Ort;
  #session: Session | undefined;
  readonly #input: string;
  readonly #output: string;
  readonly #chunkRows: number;

  private constructor(ort: Ort, session: Session, inputDim: number, outputDim: number, input: string, output: string, chunkRows: number) {
    this.#ort = ort;
    this.#session = session;
    this.inputDim = inputDim;
    this.outputDim = outputDim;
    this.#input = input;
    this.#output = output;
    this.#chunkRows = chunkRows;
  }

  static async load(options: OnnxTransformOptions): Promise<OnnxTransform> {
    const o = expectOptions<OnnxTransformOptions>(options, 'transform', ['model', 'inputDim', 'input', 'output', 'chunkRows', 'threads']);
    const model = required(o.model, 'model');
    if (typeof model !== 'string') expectTypedArray(model, 'Uint8Array', 'model');
    const inputDim = expectInteger(required(o.inputDim, 'inputDim'), 'inputDim', 1, 2 ** 24);
    const chunkRows = o.chunkRows === undefined ? 256 : expectInteger(o.chunkRows, 'chunkRows', 1, 2 ** 20);
    const sessionOptions: import('onnxruntime-node').InferenceSession.SessionOptions = {};
    if (o.threads !== undefined) sessionOptions.intraOpNumThreads = expectInteger(o.threads, 'threads', 1, 1024);
    // Loaded only here: the runtime's native library is large and most users of the binary module never need it.
    const ort = (await import('onnxruntime-node')) as Ort;
    const session = typeof model === 'string'
      ? await ort.InferenceSession.create(model, sessionOptions)
      : await ort.InferenceSession.create(model, sessionOptions);
    const input = o.input ?? session.inputNames[0];
    const output = o.output ?? session.outputNames[0];
    if (!input || !session.inputNames.includes(input)) throw new RangeError(`the model has no input "${input}" (inputs: ${session.inputNames.join(', ')})`);
    if (!output || !session.outputNames.includes(output)) throw new RangeError(`the model has no output "${output}" (outputs: ${session.outputNames.join(', ')})`);
    // One row through the model tells the output width, and that the model takes [batch, inputDim] floats at all.
    const probe = await session.run({ [input]: new ort.Tensor('float32', new Float32Array(inputDim), [1, inputDim]) });
    const y = probe[output];
    if (!y || y.type !== 'float32' || y.dims.length !== 2 || y.dims[0] !== 1) {
      throw new RangeError(`the model's output "${output}" must be float32 [batch, dim], got ${y?.type} [${y?.dims.join(', ')}]`);
    }
    return new OnnxTransform(ort, session, inputDim, Number(y.dims[1]), input, output, chunkRows);
  }

  /** Rows of inputDim floats in, rows of outputDim floats out. */
  async run(x: Float32Array): Promise<Float32Array> {
    const session = this.#session;
    if (!session) throw new Error('OnnxTransform has been disposed');
    expectFloat32Array(x, 'x');
    if (x.length % this.inputDim !== 0) throw new RangeError(`"x" length (${x.length}) is not a multiple of inputDim (${this.inputDim})`);
    const rows = x.length / this.inputDim;
    const out = new Float32Array(rows * this.outputDim);
    for (let r = 0; r < rows; r += this.#chunkRows) {
      const n = Math.min(this.#chunkRows, rows - r);
      const chunk = x.subarray(r * this.inputDim, (r + n) * this.inputDim);
      const result = await session.run({ [this.#input]: new this.#ort.Tensor('float32', chunk, [n, this.inputDim]) });
      const y = result[this.#output]!;
      if (y.data.length !== n * this.outputDim) throw new Error(`the model returned ${y.data.length} values for ${n} rows`);
      out.set(y.data as Float32Array, r * this.outputDim);
      if (r + n < rows) await new Promise((resolve) => setImmediate(resolve));  // let the event loop breathe
    }
    return out;
  }

  async dispose(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    await session?.release();
  }
}
