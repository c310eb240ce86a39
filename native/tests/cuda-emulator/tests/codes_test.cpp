// binary/codes.cu (DeviceCodes) on the emulator against the CPU's binary::hamming_topk and binary::sdc_topk: the same
// ids and scores bit for bit, ties ranked by id, for sign and residual codes, with and without ids, low-entropy
// codes (many ties), garbage padding bits, row strides, NaN and zero rows, k above n, many scan blocks per merge and
// query batches; then the argument checks and the out-of-memory path.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "check.h"
#include "tessera/binary.h"
#include "tessera/cuda_retrieval.h"

using namespace tessera;
using binary::BitOrder;

namespace {

check::Run* run = nullptr;

// n distinct ids: the extremes (their order-preserving encoding is where a sign slip shows), then random ones.
std::vector<std::int32_t> make_ids(std::size_t n, std::mt19937& rng) {
  std::set<std::int32_t> seen;
  std::vector<std::int32_t> ids;
  for (std::int32_t special : {INT32_MIN, INT32_MAX, -1, 0, 1, INT32_MIN + 1})
    if (ids.size() < n && seen.insert(special).second) ids.push_back(special);
  std::uniform_int_distribution<std::int32_t> any(INT32_MIN, INT32_MAX);
  std::uniform_int_distribution<std::int32_t> small(-3 * static_cast<int>(n) - 5, 3 * static_cast<int>(n) + 5);
  while (ids.size() < n) {
    const std::int32_t v = ids.size() % 2 ? any(rng) : small(rng);
    if (seen.insert(v).second) ids.push_back(v);
  }
  std::shuffle(ids.begin(), ids.end(), rng);
  return ids;
}

// ---- Hamming --------------------------------------------------------------------------------------------------------

struct HammingCase {
  std::size_t n, bits, nq, k;
  bool ids, low_entropy;  // low entropy: bytes & 0x11, so distances repeat and ties decide the order
  BitOrder order;
  std::size_t planes = 1;        // > 1: residual rows, of which the first plane counts
  std::size_t extra_stride = 0;  // bytes after each row
};

std::string name_of(const HammingCase& c) {
  return check::format("hamming n=%zu bits=%zu nq=%zu k=%zu ids=%d low=%d %s planes=%zu stride+%zu", c.n, c.bits,
                       c.nq, c.k, c.ids, c.low_entropy, c.order == BitOrder::msb ? "msb" : "lsb", c.planes,
                       c.extra_stride);
}

void hamming_case(const HammingCase& c, unsigned seed) {
  const std::string name = name_of(c);
  if (!run->selected(name)) return;
  std::mt19937 rng(seed);
  const std::size_t plane = binary::code_bytes(c.bits);
  const std::size_t packed = c.planes == 1 ? plane : c.planes * plane + 4;
  const std::size_t row = packed + c.extra_stride;
  std::vector<std::uint8_t> codes(std::max<std::size_t>(1, c.n * row)), queries(std::max<std::size_t>(1, c.nq * row));
  const std::uint8_t keep = c.low_entropy ? 0x11 : 0xFF;
  for (auto& b : codes) b = static_cast<std::uint8_t>(rng() & keep);
  for (auto& b : queries) b = static_cast<std::uint8_t>(rng() & keep);
  // Garbage in every padding bit of the first plane's last byte (& 0x11 may have cleared them).
  const std::uint8_t padding = static_cast<std::uint8_t>(~binary::last_byte_mask(c.bits, c.order));
  for (std::size_t i = 0; i < c.n; ++i) codes[i * row + plane - 1] |= static_cast<std::uint8_t>(padding & rng());
  for (std::size_t i = 0; i < c.nq; ++i) queries[i * row + plane - 1] |= static_cast<std::uint8_t>(padding & rng());
  const std::vector<std::int32_t> ids = c.ids ? make_ids(c.n, rng) : std::vector<std::int32_t>{};

  const std::size_t kk = std::min(c.k, c.n);
  std::vector<std::int32_t> cpu_ids(c.nq * kk, 0x7777), cpu_d(c.nq * kk, 0x7777);
  std::vector<std::int32_t> dev_ids(c.nq * kk, 0x6666), dev_d(c.nq * kk, 0x6666);
  const binary::HammingQuery q{queries.data(), c.nq, codes.data(), c.n, c.bits, c.order, c.k,
                               c.ids ? ids.data() : nullptr, row, row};
  const Status cpu = binary::hamming_topk(q, cpu_ids.data(), cpu_d.data());

  cuda::CodesSpec spec;
  spec.dim = c.bits;
  spec.planes = c.planes;
  spec.has_alpha = c.planes > 1;
  spec.order = c.order;
  spec.row_stride = c.extra_stride ? row : 0;
  std::unique_ptr<cuda::DeviceCodes> dev;
  cuda::Result r = cuda::DeviceCodes::create(spec, codes.data(), c.n, c.ids ? ids.data() : nullptr, nullptr, &dev);
  if (r.ok()) r = dev->hamming_topk(queries.data(), c.nq, row, c.k, dev_ids.data(), dev_d.data());
  if (cpu != Status::ok || !r.ok())
    return run->record(name, false, check::format("cpu %s, device %s", status_name(cpu), r.message.c_str()));
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < c.nq * kk; ++i)
    if ((cpu_ids[i] != dev_ids[i] || cpu_d[i] != dev_d[i]) && bad++ == 0) first = i;
  run->record(name, bad == 0,
              bad ? check::format("%zu of %zu differ, first [query %zu rank %zu] cpu (%d, %d) device (%d, %d)", bad,
                                  c.nq * kk, first / kk, first % kk, cpu_ids[first], cpu_d[first], dev_ids[first],
                                  dev_d[first])
                  : "");
}

// ---- SDC ------------------------------------------------------------------------------------------------------------

struct SdcCase {
  std::size_t n, dim, planes, nq, k;
  bool l2, ids;
  std::size_t nan_rows, zero_rows;
};

std::string name_of(const SdcCase& c) {
  return check::format("sdc n=%zu dim=%zu planes=%zu nq=%zu k=%zu %s ids=%d nan=%zu zero=%zu", c.n, c.dim, c.planes,
                       c.nq, c.k, c.l2 ? "l2" : "ip", c.ids, c.nan_rows, c.zero_rows);
}

// Residual codes of random rows, with some exact duplicates (ties), zero rows and NaN scales.
std::vector<std::uint8_t> sdc_codes(const SdcCase& c, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  const std::size_t row = binary::residual_row_bytes(c.dim, c.planes);
  std::vector<float> x(c.n * c.dim);
  for (auto& v : x) v = normal(rng);
  for (std::size_t z = 0; z < c.zero_rows; ++z) std::fill_n(x.begin() + z * 3 % c.n * c.dim, c.dim, 0.0f);
  for (std::size_t i = 5; i + 1 < c.n; i += 7) std::copy_n(x.begin() + (i - 5) * c.dim, c.dim, x.begin() + i * c.dim);
  std::vector<std::uint8_t> codes(std::max<std::size_t>(1, c.n * row));
  if (binary::residual_encode(x.data(), c.n, c.dim, c.planes, nullptr, codes.data()) != Status::ok) std::abort();
  const float nan = NAN;
  for (std::size_t i = 0; i < c.nan_rows; ++i)
    std::memcpy(&codes[(i * 11 + 2) % c.n * row + c.planes * binary::code_bytes(c.dim)], &nan, sizeof nan);
  return codes;
}

std::vector<std::uint8_t> sdc_queries(const SdcCase& c, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> y(c.nq * c.dim);
  for (auto& v : y) v = normal(rng);
  if (c.zero_rows) std::fill_n(y.begin(), c.dim, 0.0f);
  std::vector<std::uint8_t> queries(std::max<std::size_t>(1, c.nq * binary::residual_row_bytes(c.dim, c.planes)));
  if (binary::residual_encode(y.data(), c.nq, c.dim, c.planes, nullptr, queries.data()) != Status::ok) std::abort();
  return queries;
}

void sdc_case(const SdcCase& c, unsigned seed) {
  const std::string name = name_of(c);
  if (!run->selected(name)) return;
  std::mt19937 rng(seed);
  const std::size_t row = binary::residual_row_bytes(c.dim, c.planes);
  const std::vector<std::uint8_t> codes = sdc_codes(c, rng), queries = sdc_queries(c, rng);
  std::vector<float> norms(c.n);
  for (std::size_t i = 0; i < c.n; ++i)
    norms[i] = static_cast<float>(binary::residual_squared_norm(&codes[i * row], c.dim, c.planes));
  const std::vector<std::int32_t> ids = c.ids ? make_ids(c.n, rng) : std::vector<std::int32_t>{};

  const std::size_t kk = std::min(c.k, c.n);
  std::vector<std::int32_t> cpu_ids(c.nq * kk, 0x7777), dev_ids(c.nq * kk, 0x6666);
  std::vector<float> cpu_s(c.nq * kk, 1234.5f), dev_s(c.nq * kk, 4321.5f);
  const binary::ScoreQuery q{c.nq, codes.data(), c.n, c.dim, c.planes, c.k, c.ids ? ids.data() : nullptr,
                             c.l2 ? norms.data() : nullptr};
  const Status cpu = binary::sdc_topk(queries.data(), q, cpu_ids.data(), cpu_s.data());
  cuda::CodesSpec spec;
  spec.dim = c.dim;
  spec.planes = c.planes;
  spec.has_alpha = true;
  std::unique_ptr<cuda::DeviceCodes> dev;
  cuda::Result r = cuda::DeviceCodes::create(spec, codes.data(), c.n, c.ids ? ids.data() : nullptr,
                                             c.l2 ? norms.data() : nullptr, &dev);
  if (r.ok()) r = dev->sdc_topk(queries.data(), c.nq, c.k, dev_ids.data(), dev_s.data());
  if (cpu != Status::ok || !r.ok())
    return run->record(name, false, check::format("cpu %s, device %s", status_name(cpu), r.message.c_str()));
  // Bit for bit, but for the sign of zero: the device's keys make -0 and +0 equal and it writes +0 (codes.cu).
  std::size_t bad = 0, signed_zeros = 0, first = 0;
  for (std::size_t i = 0; i < c.nq * kk; ++i) {
    const bool same_score = check::bits_of(cpu_s[i]) == check::bits_of(dev_s[i]);
    const bool zeros = cpu_s[i] == 0 && dev_s[i] == 0;
    if (cpu_ids[i] == dev_ids[i] && (same_score || zeros)) {
      signed_zeros += !same_score;
      continue;
    }
    if (bad++ == 0) first = i;
  }
  if (signed_zeros) run->note(name, check::format("%zu zero scores are -0 on the CPU, +0 on the device", signed_zeros));
  run->record(name, bad == 0,
              bad ? check::format("%zu of %zu differ, first [query %zu rank %zu] cpu (%d, %.9g) device (%d, %.9g)",
                                  bad, c.nq * kk, first / kk, first % kk, cpu_ids[first], cpu_s[first],
                                  dev_ids[first], dev_s[first])
                  : "");
}

// ---- the matrices of cases ------------------------------------------------------------------------------------------

// Every size, width and k, twice; the other parameters rotate so that each value meets many of the others, and
// the second pass flips ids and entropy. (One query where k = 1024 lists fill from thousands of rows: warp-wide
// insertions are the emulator's slowest work.)
void hamming_cases(unsigned& seed) {
  int i = 0;
  for (bool flip : {false, true})
    for (std::size_t n : {1, 5, 37, 1000, 5003})
      for (std::size_t bits : {8, 100, 1024})
        for (std::size_t k : {1, 10, 64, 1024}) {
          const std::size_t nq = k == 1024 && n >= 1000 ? 1 : i % 3 == 0 ? 1 : i % 3 == 1 ? 3 : 9;
          const BitOrder order = bits % 8 && i % 2 ? BitOrder::lsb : BitOrder::msb;
          hamming_case({n, bits, nq, k, (i % 4 < 2) != flip, (i % 5 < 2) != flip, order}, seed++);
          ++i;
        }
  // Every combination of ids, entropy and order, at two sizes; row strides; residual rows (first plane only).
  for (std::size_t n : {37, 1000})
    for (bool ids : {false, true})
      for (bool low : {false, true})
        for (BitOrder order : {BitOrder::msb, BitOrder::lsb}) hamming_case({n, 100, 3, 10, ids, low, order}, seed++);
  hamming_case({1000, 100, 3, 10, true, true, BitOrder::msb, 1, 5}, seed++);
  hamming_case({1000, 13, 9, 64, false, true, BitOrder::lsb, 1, 3}, seed++);
  for (std::size_t planes : {2, 3, 4})
    for (std::size_t bits : {7, 100, 256}) {
      const std::size_t n = planes == 3 ? 1000 : 300, nq = planes == 2 ? 9 : 3, k = bits == 100 ? 64 : 1;
      hamming_case({n, bits, nq, k, planes != 3, planes == 4, BitOrder::msb, planes}, seed++);
    }
}

void sdc_cases(unsigned& seed) {
  for (std::size_t planes : {1, 2, 3, 4})
    for (std::size_t dim : {7, 100, 256})
      for (bool l2 : {false, true})
        for (std::size_t k : {1, 10, 1024}) {
          const std::size_t n = dim == 7 ? 1000 : dim == 100 ? 300 : 37;
          const std::size_t nq = k == 1024 && n >= 300 ? 1 : (planes + k) % 3 == 0 ? 9 : (planes + k) % 3 == 1 ? 3 : 1;
          sdc_case({n, dim, planes, nq, k, l2, (planes + dim + k) % 2 == 0, k == 10 ? 3u : 0u, 0}, seed++);
        }
  for (std::size_t planes : {1, 2, 3, 4}) {
    sdc_case({1000, 100, planes, 3, 64, false, true, 5, 0}, seed++);  // NaN rows within reach of the top k
    sdc_case({37, 7, planes, 3, 64, true, false, 5, 0}, seed++);      // k > n: the NaN rows last, by id
    sdc_case({37, 7, planes, 3, 10, false, true, 0, 3}, seed++);      // zero rows: zero scores
    sdc_case({37, 7, planes, 3, 10, true, true, 0, 3}, seed++);
  }
  sdc_case({37, 100, 2, 3, 1024, false, true, 9, 0}, seed++);  // a NaN tail with negative ids
  sdc_case({37, 100, 3, 3, 1024, true, true, 37, 0}, seed++);  // every row NaN
  sdc_case({300, 7, 4, 3, 1024, true, true, 20, 2}, seed++);
}

// Many scan blocks per merge (merge warps taking several lists each), and, with a small budget for the per-block
// lists, queries in several batches.
void multi_block_cases(unsigned& seed) {
  hamming_case({20000, 64, 3, 1, true, true, BitOrder::msb}, seed++);
  sdc_case({5003, 7, 3, 5, 10, true, true, 3, 1}, seed++);
  const check::Tunable batches("kPartialBudget", 4096);
  hamming_case({5003, 100, 9, 10, true, true, BitOrder::msb}, seed++);
  hamming_case({20000, 64, 17, 5, false, false, BitOrder::lsb}, seed++);
  sdc_case({5003, 100, 1, 17, 10, false, true, 3, 0}, seed++);
  sdc_case({20000, 30, 4, 3, 64, true, false, 3, 1}, seed++);
}

// ---- arguments and errors -------------------------------------------------------------------------------------------

void argument_cases() {
  if (!run->selected("arguments")) return;
  const std::size_t bits = 100, plane = binary::code_bytes(bits);
  std::vector<std::uint8_t> codes(5 * plane, 0x5A), q(3 * plane, 0x3C);
  std::vector<std::int32_t> ids(15, -9), d(15, -9);
  std::vector<float> s(15, -9), norms(5, 1.0f);
  cuda::CodesSpec sign;
  sign.dim = bits;
  cuda::CodesSpec residual;
  residual.dim = 7;
  residual.planes = 2;
  residual.has_alpha = true;
  std::unique_ptr<cuda::DeviceCodes> dev, empty, empty_residual, bad;
  auto invalid = [](const cuda::Result& r) { return r.status == Status::invalid_argument; };

  run->record("arguments: create", cuda::DeviceCodes::create(sign, codes.data(), 5, nullptr, nullptr, &dev).ok());
  run->record("arguments: nq 0", dev->hamming_topk(q.data(), 0, 0, 3, nullptr, nullptr).ok());
  run->record("arguments: k 0", invalid(dev->hamming_topk(q.data(), 3, 0, 0, ids.data(), d.data())));
  run->record("arguments: k 1025", invalid(dev->hamming_topk(q.data(), 3, 0, 1025, ids.data(), d.data())));
  run->record("arguments: k 1025, nq 0", invalid(dev->hamming_topk(q.data(), 0, 0, 1025, ids.data(), d.data())));
  run->record("arguments: k 1024 > n", dev->hamming_topk(q.data(), 3, 0, 1024, ids.data(), d.data()).ok());
  run->record("arguments: sdc on sign codes", invalid(dev->sdc_topk(q.data(), 3, 3, ids.data(), s.data())));
  run->record("arguments: query stride below a plane",
              invalid(dev->hamming_topk(q.data(), 3, plane - 1, 3, ids.data(), d.data())));

  run->record("arguments: create n 0", cuda::DeviceCodes::create(sign, nullptr, 0, nullptr, nullptr, &empty).ok());
  std::fill(ids.begin(), ids.end(), -9);
  std::fill(d.begin(), d.end(), -9);
  const cuda::Result none = empty->hamming_topk(q.data(), 3, 0, 4, ids.data(), d.data());
  run->record("arguments: n 0 writes nothing", none.ok() && ids[0] == -9 && d[0] == -9 && empty->size() == 0);
  run->record("arguments: k 2000, n 0", invalid(empty->hamming_topk(q.data(), 3, 0, 2000, ids.data(), d.data())));
  run->record("arguments: create residual n 0",
              cuda::DeviceCodes::create(residual, nullptr, 0, nullptr, nullptr, &empty_residual).ok());
  const cuda::Result none_sdc = empty_residual->sdc_topk(q.data(), 2, 4, ids.data(), s.data());
  run->record("arguments: sdc n 0 writes nothing", none_sdc.ok() && ids[0] == -9 && s[0] == -9);
  run->record("arguments: sdc k 0", invalid(empty_residual->sdc_topk(q.data(), 2, 0, ids.data(), s.data())));
  run->record("arguments: sdc k 1025, n 0", invalid(empty_residual->sdc_topk(q.data(), 2, 1025, ids.data(), s.data())));

  cuda::CodesSpec zero, five_planes, short_stride = sign;
  five_planes.dim = 8;
  five_planes.planes = 5;
  short_stride.row_stride = plane - 1;
  run->record("arguments: dim 0", invalid(cuda::DeviceCodes::create(zero, codes.data(), 5, nullptr, nullptr, &bad)));
  run->record("arguments: 5 planes",
              invalid(cuda::DeviceCodes::create(five_planes, codes.data(), 1, nullptr, nullptr, &bad)));
  run->record("arguments: norms on sign codes",
              invalid(cuda::DeviceCodes::create(sign, codes.data(), 5, nullptr, norms.data(), &bad)));
  run->record("arguments: row stride below a row",
              invalid(cuda::DeviceCodes::create(short_stride, codes.data(), 5, nullptr, nullptr, &bad)));
}

// A device too small for the codes: out_of_memory with what needed how much, and nothing left allocated.
void out_of_memory_case() {
  if (!run->selected("out of memory")) return;
  std::vector<std::uint8_t> codes(1000 * 128, 0x5A);
  cuda::CodesSpec spec;
  spec.dim = 1024;
  const std::size_t previous = emu::set_device_memory(64 * 1024);
  std::unique_ptr<cuda::DeviceCodes> dev;
  const cuda::Result r = cuda::DeviceCodes::create(spec, codes.data(), 1000, nullptr, nullptr, &dev);
  emu::set_device_memory(previous);
  const bool ok = r.status == Status::out_of_memory && r.message.find("the codes") != std::string::npos &&
                  r.message.find("needs") != std::string::npos && !dev;
  run->record("out of memory: create", ok && emu::leaks().empty(), r.message);
}

}  // namespace

int main(int argc, char** argv) {
  check::Run checks("binary/codes.cu", argc, argv);
  run = &checks;
  unsigned seed = 1;
  argument_cases();
  out_of_memory_case();
  hamming_cases(seed);
  sdc_cases(seed);
  multi_block_cases(seed);
  return checks.finish();
}
