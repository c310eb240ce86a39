// fde/encode.cu (DeviceFdeEncoder) on the emulator against the CPU's fde::encode, bit for bit at the AVX2 and
// AVX-512 levels, whose products are fused as the device's are (the scalar level's dense projections, without FMA on
// x86-64-v2, round differently by design: not compared): every projection, documents (averaged, empty
// partitions filled) and queries (summed), fill off, the final projection, SimHash widths 0 to 16 (16 and 12+: the
// partition tables in device memory), duplicate tokens and exact zeros, batches in many chunks; then the argument
// checks.
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "check.h"
#include "tessera/cuda_retrieval.h"
#include "tessera/fde.h"
#include "tessera/runtime.h"

using namespace tessera;

namespace {

check::Run* run = nullptr;

const std::vector<std::int32_t> kLengths = {1, 5, 33, 70, 2, 130};

void encode_case(const std::string& name, const fde::Config& c, const std::vector<std::int32_t>& lengths,
                 bool document, unsigned seed) {
  if (!run->selected(name)) return;
  fde::Matrices m;
  if (fde::generate(c, &m) != Status::ok) return run->record(name, false, "fde::generate failed");
  std::size_t total = 0;
  for (std::int32_t l : lengths) total += static_cast<std::size_t>(l);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> tokens(total * c.dim);
  for (auto& v : tokens) v = normal(rng);
  if (total > 3) {  // a duplicate token (equal signs: the same partition) and an exact zero
    std::copy_n(tokens.begin(), c.dim, tokens.begin() + 2 * c.dim);
    tokens[5] = 0.0f;
  }
  std::vector<float> cpu(lengths.size() * c.output_dim()), dev(cpu.size(), NAN);
  const Status s = fde::encode(c, m, tokens.data(), lengths.data(), lengths.size(), document, cpu.data());
  std::unique_ptr<cuda::DeviceFdeEncoder> encoder;
  cuda::Result r = cuda::DeviceFdeEncoder::create(c, m, &encoder);
  if (r.ok()) r = encoder->encode(tokens.data(), lengths.data(), lengths.size(), document, dev.data());
  if (s != Status::ok || !r.ok())
    return run->record(name, false, check::format("cpu %s, device %s", status_name(s), r.message.c_str()));
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i)
    if (check::bits_of(cpu[i]) != check::bits_of(dev[i]) && bad++ == 0) first = i;
  run->record(name, bad == 0,
              bad ? check::format("%zu of %zu differ, first [%zu] cpu %.9g device %.9g", bad, cpu.size(), first,
                                  cpu[first], dev[first])
                  : "");
}

fde::Config config(std::size_t dim, std::size_t repetitions, std::size_t bits, fde::Projection projection,
                   std::size_t projection_dim) {
  fde::Config c;
  c.dim = dim;
  c.repetitions = repetitions;
  c.simhash_bits = bits;
  c.projection = projection;
  c.projection_dim = projection_dim;
  return c;
}

// The configurations, each for documents and for queries.
void configurations(const char* level, unsigned& seed) {
  using fde::Projection;
  for (bool document : {true, false}) {
    auto encode = [&](const char* what, const fde::Config& c, const std::vector<std::int32_t>& lengths) {
      encode_case(check::format("%s %s %s", level, what, document ? "documents" : "queries"), c, lengths, document,
                  seed++);
    };
    encode("countsketch k3", config(40, 3, 3, Projection::countsketch, 8), kLengths);
    fde::Config c = config(128, 14, 5, Projection::countsketch, 16);
    encode("countsketch k5 R14", c, kLengths);
    c.fill_empty = false;
    encode("countsketch no fill", c, kLengths);
    c.fill_empty = true;
    c.final_dim = 333;
    encode("countsketch final 333", c, kLengths);
    encode("dense dim 130", config(130, 2, 4, Projection::dense, 20), kLengths);
    encode("dense p 300", config(17, 2, 6, Projection::dense, 300), kLengths);
    encode("identity k2", config(70, 2, 2, Projection::identity, 0), kLengths);
    encode("identity k0", config(70, 2, 0, Projection::identity, 0), kLengths);
    encode("countsketch k0", config(128, 2, 0, Projection::countsketch, 16), kLengths);
    encode("countsketch k1 R70", config(9, 70, 1, Projection::countsketch, 16), kLengths);
    encode("countsketch k12 (tables in device memory)", config(24, 2, 12, Projection::countsketch, 2), kLengths);
    encode("dense k13", config(10, 1, 13, Projection::dense, 2), {3, 40});
    encode("countsketch k16", config(33, 1, 16, Projection::countsketch, 1), {1, 50});
  }
}

// Small budgets: a batch in many chunks (down to one cloud each), and few blocks sharing the device-memory tables.
void budget_cases(unsigned& seed) {
  using fde::Projection;
  const check::Tunable chunks("kChunkBudget", 3000);
  const check::Tunable tables("kGlobalTableBudget", 200000);
  for (bool document : {true, false}) {
    const char* kind = document ? "documents" : "queries";
    encode_case(check::format("chunked countsketch final %s", kind), [] {
      fde::Config c = config(40, 3, 3, Projection::countsketch, 8);
      c.final_dim = 100;
      return c;
    }(), kLengths, document, seed++);
    encode_case(check::format("chunked dense %s", kind), config(20, 2, 4, Projection::dense, 20), kLengths, document,
                seed++);
    encode_case(check::format("chunked k12 tables %s", kind), config(24, 3, 12, Projection::countsketch, 2), kLengths,
                document, seed++);
  }
}

void argument_cases() {
  if (!run->selected("arguments")) return;
  fde::Config c = config(8, 2, 2, fde::Projection::countsketch, 4);
  fde::Matrices m;
  fde::generate(c, &m);
  auto invalid = [](const cuda::Result& r) { return r.status == Status::invalid_argument; };
  std::unique_ptr<cuda::DeviceFdeEncoder> e;
  fde::Matrices short_matrices = m;
  short_matrices.simhash.pop_back();
  run->record("arguments: matrices of the wrong size", invalid(cuda::DeviceFdeEncoder::create(c, short_matrices, &e)));
  fde::Config zero = c;
  zero.dim = 0;
  run->record("arguments: dim 0", invalid(cuda::DeviceFdeEncoder::create(zero, m, &e)));
  run->record("arguments: no output", invalid(cuda::DeviceFdeEncoder::create(c, m, nullptr)));
  run->record("arguments: create", cuda::DeviceFdeEncoder::create(c, m, &e).ok());
  float tokens[16] = {}, out[64];
  std::int32_t lengths[2] = {1, 0};
  run->record("arguments: count 0", e->encode(nullptr, nullptr, 0, true, nullptr).ok());
  run->record("arguments: an empty cloud", invalid(e->encode(tokens, lengths, 2, true, out)));
  run->record("arguments: no lengths", invalid(e->encode(tokens, nullptr, 1, true, out)));
  run->record("arguments: one token", e->encode(tokens, lengths, 1, true, out).ok());
}

}  // namespace

int main(int argc, char** argv) {
  check::Run checks("fde/encode.cu", argc, argv);
  run = &checks;
  unsigned seed = 1;
  argument_cases();
  for (SimdLevel level : {SimdLevel::avx512, SimdLevel::avx2}) {
    if (!simd_level_available(level)) {
      checks.note(simd_level_name(level), "not available on this CPU: not compared");
      continue;
    }
    set_simd_level(level);
    configurations(simd_level_name(level), seed);
  }
  set_simd_level(detected_simd_level());
  budget_cases(seed);
  return checks.finish();
}
