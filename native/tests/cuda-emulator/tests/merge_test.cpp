// attention/merge.cu (detail::merge_states) on the emulator against the CPU's attention::merge_states, bit for bit:
// both layouts, outputs separate or aliasing either input, dims with and without 16-byte vectors, empty shapes, LSEs
// of -inf (one side or both: zero rows), equal, far apart (a weight that underflows), +inf and NaN; in one chunk and in
// many (a small chunk budget: bshd chunks of partial LSE runs); then the argument checks.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "attention/context.cuh"
#include "check.h"
#include "tessera/attention.h"

using namespace tessera;
using attention::Layout;

namespace {

check::Run* run = nullptr;
cuda::detail::AttentionContext* context = nullptr;

enum class Alias { none, first, second };  // out and lse are separate, or the first or the second input's

struct State {
  std::vector<float> out_a, out_b, lse_a, lse_b, out, lse;
  float* out_to(Alias a) { return a == Alias::first ? out_a.data() : a == Alias::second ? out_b.data() : out.data(); }
  float* lse_to(Alias a) { return a == Alias::first ? lse_a.data() : a == Alias::second ? lse_b.data() : lse.data(); }
};

// Rows of normal values; LSEs normal, with the special cases mixed in. Every fifth case also has +inf and NaN LSEs,
// and its first 16 rows pair every two of -inf, +inf, NaN and a finite value (which side wins the maximum matters).
State make_state(const attention::MergeShape& s, unsigned seed) {
  std::mt19937 rng(seed);
  const std::size_t rows = s.batch * s.heads * s.seq;
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_int_distribution<int> pick(0, 19);
  State st{std::vector<float>(rows * s.dim), std::vector<float>(rows * s.dim), std::vector<float>(rows),
           std::vector<float>(rows), std::vector<float>(rows * s.dim), std::vector<float>(rows)};
  for (auto& x : st.out_a) x = normal(rng);
  for (auto& x : st.out_b) x = normal(rng);
  for (std::size_t i = 0; i < rows; ++i) {
    float& a = st.lse_a[i];
    float& b = st.lse_b[i];
    a = normal(rng) * 10, b = normal(rng) * 10;
    switch (pick(rng)) {
      case 0: a = -INFINITY; break;
      case 1: b = -INFINITY; break;
      case 2: a = b = -INFINITY; break;
      case 3: b = a; break;
      case 4: a += 800; break;  // the other weight underflows
      case 5: if (seed % 5 == 0) a = INFINITY; break;
      case 6: if (seed % 5 == 0) b = NAN; break;
      default: break;
    }
  }
  const float specials[] = {-INFINITY, INFINITY, NAN, 1.5f};
  for (std::size_t i = 0; seed % 5 == 0 && i < std::min<std::size_t>(rows, 16); ++i)
    st.lse_a[i] = specials[i % 4], st.lse_b[i] = specials[i / 4];
  if (rows > 0) st.out_a[0] = st.out_b[0] = -0.0f;
  return st;
}

// "" when x and y hold the same bits (NaN payloads aside: each machine has its own), else where they first differ.
std::string difference(const char* what, const std::vector<float>& x, const std::vector<float>& y) {
  for (std::size_t i = 0; i < x.size(); ++i)
    if (std::memcmp(&x[i], &y[i], sizeof(float)) != 0 && !(std::isnan(x[i]) && std::isnan(y[i])))
      return check::format("%s[%zu]: cpu %.9g, device %.9g", what, i, x[i], y[i]);
  return "";
}

void merge_case(const attention::MergeShape& s, Alias alias, const char* budget, unsigned seed) {
  const char* aliases[] = {"separate", "into the first", "into the second"};
  const std::string name = check::format("%s b%zu h%zu s%zu d%zu %s output %s", budget, s.batch, s.heads, s.seq, s.dim,
                                         s.layout == Layout::bshd ? "bshd" : "bhsd", aliases[static_cast<int>(alias)]);
  if (!run->selected(name)) return;
  State cpu = make_state(s, seed), dev = cpu;
  const Status st = attention::merge_states(cpu.out_a.data(), cpu.lse_a.data(), cpu.out_b.data(), cpu.lse_b.data(), s,
                                            cpu.out_to(alias), cpu.lse_to(alias));
  const cuda::Result r = cuda::detail::merge_states(*context, dev.out_a.data(), dev.lse_a.data(), dev.out_b.data(),
                                                    dev.lse_b.data(), s, dev.out_to(alias), dev.lse_to(alias));
  if (st != r.status)
    return run->record(name, false, check::format("cpu %s, device %s", status_name(st), r.message.c_str()));
  std::string differs;
  for (const auto& [what, x, y] : {std::tuple{"out", &cpu.out, &dev.out}, {"lse", &cpu.lse, &dev.lse},
                                   {"out_a", &cpu.out_a, &dev.out_a}, {"lse_a", &cpu.lse_a, &dev.lse_a},
                                   {"out_b", &cpu.out_b, &dev.out_b}, {"lse_b", &cpu.lse_b, &dev.lse_b}})
    if (differs.empty()) differs = difference(what, *x, *y);
  run->record(name, differs.empty(), differs);
}

void merge_matrix(const char* budget, unsigned& seed) {
  const std::array<std::size_t, 4> shapes[] = {{1, 1, 1, 1},   {2, 3, 5, 4},    {3, 2, 7, 3},  {1, 4, 9, 64},
                                               {2, 5, 3, 130}, {1, 1, 17, 128}, {2, 2, 0, 8},  {0, 3, 3, 8},
                                               {5, 3, 8, 16},  {4, 2, 9, 32},   {3, 7, 5, 5}};
  for (const auto& d : shapes)
    for (Layout layout : {Layout::bshd, Layout::bhsd})
      for (Alias alias : {Alias::none, Alias::first, Alias::second})
        merge_case(attention::MergeShape{d[0], d[1], d[2], d[3], layout}, alias, budget, seed++);
}

// The device accepts and rejects what the CPU does.
void argument_cases() {
  float x[8] = {};
  struct Bad {
    const char* name;
    attention::MergeShape s;
    bool nulls;
  } bads[] = {{"dim 0", {1, 1, 2, 0}, false},
              {"dim 0, no rows", {1, 1, 0, 0}, false},
              {"overflowing shape", {std::size_t{1} << 40, std::size_t{1} << 30, 1, 4}, false},
              {"null arrays", {1, 1, 2, 4}, true},
              {"null arrays, no rows (fine)", {1, 0, 2, 4}, true}};
  for (const Bad& b : bads) {
    const std::string name = std::string("arguments: ") + b.name;
    if (!run->selected(name)) continue;
    const float* in = b.nulls ? nullptr : x;
    float* o = b.nulls ? nullptr : x;
    const Status st = attention::merge_states(in, in, in, in, b.s, o, o);
    const cuda::Result r = cuda::detail::merge_states(*context, in, in, in, in, b.s, o, o);
    run->record(name, st == r.status, check::format("cpu %s, device %s", status_name(st), r.message.c_str()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  check::Run checks("attention/merge.cu", argc, argv);
  run = &checks;
  {
    cuda::detail::AttentionContext ctx;  // gone before finish() looks for leaks
    if (!ctx.stream.create().ok()) return 2;
    context = &ctx;
    argument_cases();
    unsigned seed = 100;
    merge_matrix("one chunk:", seed);
    const check::Tunable chunks("kChunkBudget", 200);
    merge_matrix("chunks of 200 bytes:", seed);
  }
  return checks.finish();
}
