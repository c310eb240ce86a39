# The FAISS peer for bench/binary.bench.mjs: loads the same codes and queries, then answers "search <nq>" lines by
# running IndexBinaryFlat.search and printing its own elapsed milliseconds (so the pipe is not timed).
# Run with Debian's python3 (python3-faiss). Protocol: stdin lines, stdout one line per request.
import sys
import time

import faiss
import numpy as np

codes_file, queries_file, bytes_per_code = sys.argv[1], sys.argv[2], int(sys.argv[3])
codes = np.fromfile(codes_file, dtype=np.uint8).reshape(-1, bytes_per_code)
queries = np.fromfile(queries_file, dtype=np.uint8).reshape(-1, bytes_per_code)
index = faiss.IndexBinaryFlat(bytes_per_code * 8)
index.add(codes)
print(f"ready faiss {faiss.__version__} threads {faiss.omp_get_max_threads()}", flush=True)
for line in sys.stdin:
    parts = line.split()
    if not parts or parts[0] != "search":
        break
    nq, k = int(parts[1]), int(parts[2])
    t0 = time.perf_counter()
    distances, labels = index.search(queries[:nq], k)
    ms = (time.perf_counter() - t0) * 1e3
    print(f"{ms} {int(distances[0][0])} {int(labels[0][0])}", flush=True)
