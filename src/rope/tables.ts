// Learned absolute position tables stretched to longer contexts: LongEmbed's position interpolation (Zhu et al.
// 2024, arXiv 2404.12096) and Long-CLIP's knowledge-preserved stretching (Zhang et al. 2024, arXiv 2403.15378).
import { expectFloat32Array, expectInteger, expectOneOf, expectOptions } from '../core/validate.js';

export interface InterpolatePositionTableOptions {
  /** Rows and columns of `table` (row-major). */
  rows: number;
  dim: number;
  /** Rows of the result. */
  newRows: number;
  /** 'linear' (default) blends the two nearest source rows; 'nearest' takes the source row at or below. */
  method?: 'linear' | 'nearest';
  /** The first `keep` rows are copied unchanged (Long-CLIP keeps 20: the well-trained positions). */
  keep?: number;
}

/**
 * Stretches a position table: row j < keep is copied; row j ≥ keep takes source position
 * x = keep + (j − keep) · (rows − keep) / (newRows − keep), blended linearly between rows floor(x) and floor(x) + 1
 * (past the last row, extrapolated along the last two rows, as Long-CLIP does). With keep = 20, 77 → 248 rows this is
 * Long-CLIP's table exactly: new[20 + 4k + r] = ((4 − r) pe[20 + k] + r pe[21 + k]) / 4 and
 * new[244 + r] = pe[76] + r (pe[76] − pe[75]) / 4. Computed in float64, rounded once to float32.
 */
export function interpolatePositionTable(table: Float32Array, options: InterpolatePositionTableOptions): Float32Array {
  const t = expectFloat32Array(table, 'table');
  const o = expectOptions<InterpolatePositionTableOptions>(options, 'options', ['rows', 'dim', 'newRows', 'method', 'keep']);
  if (options === undefined) throw new TypeError('Expected "options" to be an object, got undefined');
  const rows = expectInteger(o.rows, 'rows', 1);
  const dim = expectInteger(o.dim, 'dim', 1);
  if (t.length !== rows * dim) throw new RangeError(`"table" must hold rows × dim = ${rows * dim} values, got ${t.length}`);
  const keep = o.keep === undefined ? 0 : expectInteger(o.keep, 'keep', 0, rows - 1);
  const newRows = expectInteger(o.newRows, 'newRows', keep + 1);
  if (newRows * dim > 2 ** 31) throw new RangeError(`"newRows" × "dim" is too large (${newRows * dim} values)`);
  const method = o.method === undefined ? 'linear' : expectOneOf(o.method, 'method', ['linear', 'nearest'] as const);
  const out = new Float32Array(newRows * dim);
  out.set(t.subarray(0, keep * dim));
  const ratio = (rows - keep) / (newRows - keep);  // source rows per new row
  for (let j = keep; j < newRows; j++) {
    const x = keep + (j - keep) * ratio;
    const dst = j * dim;
    if (method === 'nearest' || rows === 1) {
      const src = Math.min(rows - 1, Math.floor(x)) * dim;
      out.set(t.subarray(src, src + dim), dst);
      continue;
    }
    // Between rows lo and lo + 1; past the last row, along the last two rows.
    const lo = Math.min(Math.floor(x), rows - 2), w = x - lo;
    const a = lo * dim, b = a + dim;
    for (let c = 0; c < dim; c++) out[dst + c] = (1 - w) * t[a + c]! + w * t[b + c]!;
  }
  return out;
}
