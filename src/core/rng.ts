// Tessera's seeded random generator, as specified in native/include/tessera/rng.h: counter-based SplitMix64, so a
// stream is reproducible from its seed alone, on any thread count, and identical to what the native modules use
// for their random matrices.
import { binding } from '../native/load.js';
import { expectFloat32Array, expectInteger, expectU64 } from './validate.js';

/** Version of the generator's specification; persisted files record it. */
export const RNG_ALGORITHM_VERSION = 1;

const MAX_FILL = 2 ** 31;

/**
 * A stream of random values from a seed. Each draw advances a 64-bit counter, so the same seed and the same
 * sequence of calls always give the same values. Normal draws use counters in pairs (Box–Muller) and start on an
 * even counter, so they never reuse a counter that another draw used.
 */
export class Rng {
  readonly seed: bigint;
  #counter = 0n;

  constructor(seed: number | bigint = 0) {
    this.seed = expectU64(seed, 'seed');
  }

  /** An independent stream for a purpose (for example one per random matrix): mix(seed ^ mix(label + γ)). */
  derive(label: number | bigint): Rng {
    return new Rng(binding().rngDerive(this.seed, expectU64(label, 'label')));
  }

  /** The counter of the next draw. */
  get position(): bigint {
    return this.#counter;
  }

  /** Raw 64-bit outputs. */
  uint64(count: number): BigUint64Array {
    const out = new BigUint64Array(expectInteger(count, 'count', 0, MAX_FILL));
    binding().rngFill('u64', this.seed, this.#take(out.length), out);
    return out;
  }

  /** Uniform floats in [0, 1), each a multiple of 2^-24. */
  uniform(countOrOut: number | Float32Array): Float32Array {
    const out = this.#target(countOrOut);
    return binding().rngFill('uniform', this.seed, this.#take(out.length), out);
  }

  /** Standard normal floats (Box–Muller in float64, rounded). */
  normal(countOrOut: number | Float32Array): Float32Array {
    const out = this.#target(countOrOut);
    this.#counter += this.#counter & 1n;
    const offset = this.#take(out.length);
    this.#counter += this.#counter & 1n;
    return binding().rngFill('normal', this.seed, offset, out);
  }

  /** ±1 with equal probability (the top bit of each output). */
  signs(countOrOut: number | Float32Array): Float32Array {
    const out = this.#target(countOrOut);
    return binding().rngFill('signs', this.seed, this.#take(out.length), out);
  }

  #target(countOrOut: number | Float32Array): Float32Array {
    if (typeof countOrOut === 'number') return new Float32Array(expectInteger(countOrOut, 'count', 0, MAX_FILL));
    return expectFloat32Array(countOrOut, 'out');
  }

  #take(n: number): bigint {
    const start = this.#counter;
    if (start + BigInt(n) >= 1n << 64n) throw new RangeError('this stream is exhausted (2^64 draws)');
    this.#counter = start + BigInt(n);
    return start;
  }
}
