// float32 <-> binary16 and bfloat16 bits in plain JS (round to nearest even, NaN stays NaN), for building and
// reading half-precision tensors in benchmarks and tests, independently of the library's own conversions.

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** The binary16 bits nearest to v. */
export function toHalf(v) {
  scratch[0] = v;
  const x = scratchBits[0], sign = (x >>> 16) & 0x8000, a = x & 0x7fffffff;
  if (a >= 0x477ff000) return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00);  // 65520 and up: infinity; NaN stays NaN
  if (a < 0x38800000) {  // a subnormal half, or zero
    if (a < 0x33000000) return sign;
    const e = a >>> 23, m = (a & 0x7fffff) | 0x800000, shift = 126 - e;
    let q = m >>> shift;
    const rest = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rest > half || (rest === half && q & 1)) q++;
    return sign | q;
  }
  const r = a - (112 << 23);  // rebias 127 -> 15
  let q = r >>> 13;
  const rest = r & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && q & 1)) q++;
  return sign | q;
}

/** The value of binary16 bits h. */
export function fromHalf(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** The bfloat16 bits nearest to v. */
export function toBf16(v) {
  scratch[0] = v;
  const bits = scratchBits[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The value of bfloat16 bits h. */
export function fromBf16(h) {
  scratchBits[0] = h << 16;
  return scratch[0];
}

/** A Uint16Array of the binary16 bits of every value (a loop: Uint16Array.from(x, fn) collects a JS array first). */
export function halves(x) {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = toHalf(x[i]);
  return out;
}
