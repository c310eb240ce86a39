# A plain numpy implementation of MUVERA document FDEs (the algorithm of native/include/tessera/fde.h: SimHash
# partitions named by Gray-decoded sign bits, count-sketch inner projection, per-partition means, empty partitions
# filled with the nearest token by sign-pattern Hamming distance), written for bench/fde.bench.mjs as its baseline.
# Protocol: argv = tokens file (float32, docs x ntok x dim), ntok, dim, repetitions, k, p; then stdin lines
# "encode <count>" answered with the milliseconds numpy took to encode the first <count> documents.
import sys
import time

import numpy as np


class NumpyFde:
    def __init__(self, dim, reps, k, p, seed=42):
        rng = np.random.default_rng(seed)
        self.dim, self.reps, self.k, self.p = dim, reps, k, p
        self.partitions = 1 << k
        self.simhash = rng.standard_normal((dim, reps * k)).astype(np.float32)
        self.sketch = np.zeros((reps, dim, p), np.float32)
        columns = rng.integers(0, p, (reps, dim))
        signs = rng.choice(np.array([-1.0, 1.0], np.float32), (reps, dim))
        for r in range(reps):
            self.sketch[r, np.arange(dim), columns[r]] = signs[r]
        g = np.arange(self.partitions)
        self.patterns = g ^ (g >> 1)  # partition index -> its sign pattern

    def document(self, x):
        k, reps, p, parts = self.k, self.reps, self.p, self.partitions
        out = np.zeros((reps, parts, p), np.float32)
        bits = (x @ self.simhash > 0).reshape(len(x), reps, k)
        weights = 1 << np.arange(k - 1, -1, -1)
        pattern = (bits * weights).sum(-1)                     # tokens x reps, bit 0 most significant
        part = pattern.copy()                                   # Gray decode: prefix XOR from the top
        shift = 1
        while shift < k:
            part ^= part >> shift
            shift <<= 1
        for r in range(reps):
            y = x @ self.sketch[r]
            np.add.at(out[r], part[:, r], y)
            count = np.bincount(part[:, r], minlength=parts)
            full = count > 0
            out[r][full] /= count[full][:, None]
            empty = np.flatnonzero(~full)
            if len(empty):
                diff = self.patterns[empty][:, None] ^ pattern[None, :, r]
                distance = np.unpackbits(diff.astype('>u4').view(np.uint8).reshape(*diff.shape, 4), axis=-1).sum(-1)
                out[r][empty] = y[distance.argmin(1)]          # argmin: the lowest token index on ties
        return out.reshape(-1)


def main():
    path, ntok, dim, reps, k, p = sys.argv[1], *map(int, sys.argv[2:7])
    docs = np.fromfile(path, dtype=np.float32).reshape(-1, ntok, dim)
    fde = NumpyFde(dim, reps, k, p)
    fde.document(docs[0])  # warm up
    print(f"ready numpy {np.__version__}", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] != "encode":
            break
        count = int(parts[1])
        t0 = time.perf_counter()
        for d in range(count):
            fde.document(docs[d])
        print((time.perf_counter() - t0) * 1e3, flush=True)


main()
