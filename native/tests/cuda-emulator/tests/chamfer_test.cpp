// fde/chamfer.cu (DeviceMultiVectors) on the emulator against a float64 reference with the CPU's max semantics (a
// NaN dot product never wins), within the stated bounds: float32 (CUDA cores) within float32 accumulation error, and
// the CPU's fde::chamfer_scores likewise; bfloat16 (tensor cores) within float32 accumulation of the rounded inputs,
// and within cuda_retrieval.h's bound of the unrounded ones. Odd dims (padding), long documents (many tiles and
// chunks), slot groups, many documents, NaN and infinite tokens, queries in several batches; chamfer_topk
// (common/row_topk.cu) against sorting the device's own scores, ties and NaN included; then the argument checks.
#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "check.h"
#include "tessera/cuda_retrieval.h"
#include "tessera/fde.h"
#include "tessera/half.h"

using namespace tessera;
using cuda::ChamferPrecision;

namespace {

check::Run* run = nullptr;

struct Clouds {
  std::vector<float> x;
  std::vector<std::int32_t> lengths;
  std::size_t offset(std::size_t i) const {  // first token of cloud i
    std::size_t o = 0;
    for (std::size_t j = 0; j < i; ++j) o += static_cast<std::size_t>(lengths[j]);
    return o;
  }
};

Clouds make_clouds(std::mt19937& rng, std::vector<std::int32_t> lengths, std::size_t dim) {
  Clouds c{{}, std::move(lengths)};
  std::normal_distribution<float> normal;
  c.x.resize(c.offset(c.lengths.size()) * dim);
  for (auto& v : c.x) v = normal(rng);
  return c;
}

// Clouds' token counts: given, or `count` drawn from [lo, hi] (random_lengths).
struct Lengths {
  std::vector<std::int32_t> given;
  std::size_t count = 0;
  int lo = 1, hi = 1;
  Lengths(std::initializer_list<std::int32_t> l) : given(l) {}
  Lengths(std::size_t n, int lo_, int hi_) : count(n), lo(lo_), hi(hi_) {}
  std::vector<std::int32_t> draw(std::mt19937& rng) const {
    if (!given.empty()) return given;
    std::uniform_int_distribution<int> u(lo, hi);
    std::vector<std::int32_t> v(count);
    for (auto& x : v) x = u(rng);
    return v;
  }
};

Lengths random_lengths(std::size_t count, int lo, int hi) { return Lengths(count, lo, hi); }

float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

// The score of query qi against document di in float64 (inputs rounded to bfloat16 first, if asked), and the
// bound's scale: the sum over query tokens of the largest sum_i |q_i d_i| over the document's tokens.
struct Reference {
  double score, scale;
};

Reference reference(const Clouds& q, std::size_t qi, const Clouds& d, std::size_t di, std::size_t dim, bool bf16) {
  const std::size_t qo = q.offset(qi), doff = d.offset(di);
  Reference r{0, 0};
  for (std::int32_t a = 0; a < q.lengths[qi]; ++a) {
    double best = -std::numeric_limits<double>::infinity(), largest = 0;
    for (std::int32_t t = 0; t < d.lengths[di]; ++t) {
      double s = 0, m = 0;
      for (std::size_t i = 0; i < dim; ++i) {
        float qv = q.x[(qo + a) * dim + i], dv = d.x[(doff + t) * dim + i];
        if (bf16) qv = round_bf16(qv), dv = round_bf16(dv);
        s += static_cast<double>(qv) * dv;
        m += std::fabs(static_cast<double>(qv) * dv);
      }
      best = std::max(best, s);  // as the CPU's: a NaN s is skipped
      largest = std::max(largest, m);
    }
    r.score += best;
    r.scale += largest;
  }
  return r;
}

// Whether a score is within the bounds of the references (non-finite ones exactly).
std::string score_error(const Clouds& q, std::size_t qi, const Clouds& d, std::size_t di, std::size_t dim,
                        ChamferPrecision p, float got) {
  const bool bf16 = p == ChamferPrecision::bfloat16;
  const Reference ref = reference(q, qi, d, di, dim, bf16);
  if (!std::isfinite(ref.score))
    return (std::isnan(ref.score) && std::isnan(got)) || ref.score == got
               ? ""
               : check::format("reference %g, device %g", ref.score, got);
  // Against the same (rounded) inputs only the float32 accumulation differs.
  const double padded = bf16 ? std::ceil(static_cast<double>(dim) / 32) * 32 : static_cast<double>(dim);
  const double tolerance = ref.scale * (padded * std::ldexp(1.0, -23) + 1e-6) + 1e-6;
  if (std::fabs(got - ref.score) > tolerance)
    return check::format("reference %.9g, device %.9g (tolerance %g)", ref.score, got, tolerance);
  if (!bf16) return "";
  // The stated bound against the unrounded inputs (cuda_retrieval.h).
  const Reference exact = reference(q, qi, d, di, dim, false);
  const double bound =
      2 * exact.scale * (std::ldexp(1.0, -7) + std::ldexp(1.0, -16) + 1.01 * padded * std::ldexp(1.0, -23)) +
      1e-5 * exact.scale;
  return std::fabs(got - exact.score) <= bound
             ? ""
             : check::format("unrounded reference %.9g, device %.9g (bound %g)", exact.score, got, bound);
}

// Each case draws its data from a generator seeded by its name: the same with or without a filter.
void chamfer_case(const std::string& name, const Lengths& doc_lengths, const Lengths& query_lengths, std::size_t dim,
                  ChamferPrecision p, bool poison = false) {
  if (!run->selected(name)) return;
  std::mt19937 rng(static_cast<unsigned>(std::hash<std::string>{}(name)));
  Clouds d = make_clouds(rng, doc_lengths.draw(rng), dim);
  Clouds q = make_clouds(rng, query_lengths.draw(rng), dim);
  if (poison) {
    d.x[0] = NAN;                      // document 0's token 0: never the maximum
    if (d.lengths.size() > 2)          // document 2: every dot product NaN, so every query token gets -inf
      for (std::int32_t t = 0; t < d.lengths[2]; ++t) d.x[(d.offset(2) + t) * dim] = NAN;
  }
  std::unique_ptr<cuda::DeviceMultiVectors> store;
  cuda::Result r = cuda::DeviceMultiVectors::create(d.x.data(), d.lengths.data(), d.lengths.size(), dim, p, &store);
  const std::size_t nq = q.lengths.size(), n = d.lengths.size();
  std::vector<float> scores(nq * n, -12345.0f);
  if (r.ok()) r = store->chamfer(q.x.data(), q.lengths.data(), nq, scores.data());
  if (!r.ok()) return run->record(name, false, r.message);
  if (store->size() != n || store->dim() != dim) return run->record(name, false, "size or dim");
  std::vector<float> cpu(n);
  std::string cpu_differs;
  for (std::size_t a = 0; a < nq; ++a) {
    if (p == ChamferPrecision::float32 &&
        fde::chamfer_scores(&q.x[q.offset(a) * dim], static_cast<std::size_t>(q.lengths[a]), d.x.data(),
                            d.lengths.data(), n, dim, cpu.data()) != Status::ok)
      return run->record(name, false, "fde::chamfer_scores failed");
    for (std::size_t b = 0; b < n; ++b) {
      const std::string error = score_error(q, a, d, b, dim, p, scores[a * n + b]);
      if (!error.empty()) return run->record(name, false, check::format("query %zu, document %zu: ", a, b) + error);
      // The CPU's float32 path, as a check of the reference: within the same bound.
      if (p == ChamferPrecision::float32 && cpu_differs.empty() && !score_error(q, a, d, b, dim, p, cpu[b]).empty())
        cpu_differs = check::format("query %zu, document %zu: fde::chamfer_scores gives %g, the reference %g", a, b,
                                    cpu[b], reference(q, a, d, b, dim, false).score);
    }
  }
  // A CPU difference is the CPU's (its AVX2 and AVX-512 maxima let a document's last NaN dot product through).
  if (!cpu_differs.empty()) run->note(name, cpu_differs + " (the device agrees with the reference)");
  run->record(name, true);
}

void precision_cases(ChamferPrecision p) {
  const char* pn = p == ChamferPrecision::bfloat16 ? "bf16" : "f32";
  for (std::size_t dim : {1, 3, 8, 31, 32, 33, 100, 128, 129, 200, 257})
    chamfer_case(check::format("%s dim %zu", pn, dim), random_lengths(23, 1, 20), {1, 17, 32, 5}, dim, p);
  chamfer_case(check::format("%s long documents", pn), {1, 200, 8, 9, 16, 15, 300, 2}, {33, 1}, 64, p);
  chamfer_case(check::format("%s 9 slots (groups of 5 and 4)", pn), random_lengths(40, 1, 30),
               {32, 32, 32, 32, 32, 32, 32, 32, 20}, 96, p);
  chamfer_case(check::format("%s 20 queries", pn), random_lengths(30, 1, 12), random_lengths(20, 1, 70), 40, p);
  chamfer_case(check::format("%s NaN tokens", pn), random_lengths(10, 1, 10), {3, 16}, 24, p, true);
  chamfer_case(check::format("%s many documents", pn), random_lengths(700, 1, 40), {32}, 32, p);
  const check::Tunable batches("kScratchFloats", 200);
  chamfer_case(check::format("%s queries in batches", pn), random_lengths(23, 1, 20), random_lengths(9, 1, 40), 48, p);
}

// Random shapes; every third with NaN tokens.
void stress_cases() {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> dims(1, 300), docs(1, 60), queries(1, 12);
  for (int i = 0; i < 24; ++i) {
    const auto p = i % 2 ? ChamferPrecision::float32 : ChamferPrecision::bfloat16;
    const auto dim = static_cast<std::size_t>(dims(rng));
    const std::size_t nd = static_cast<std::size_t>(docs(rng)), nq = static_cast<std::size_t>(queries(rng));
    chamfer_case(check::format("stress %d %s dim %zu", i, i % 2 ? "f32" : "bf16", dim), random_lengths(nd, 1, 50),
                 random_lengths(nq, 1, 80), dim, p, i % 3 == 0);
  }
}

// A NaN and an infinity in the queries: the scores follow IEEE arithmetic as the reference's do.
void nonfinite_query_cases() {
  std::mt19937 rng(11);
  Clouds d = make_clouds(rng, {3, 9, 1}, 12), q = make_clouds(rng, {2, 5}, 12);
  q.x[0] = NAN;
  q.x[2 * 12 + 3] = INFINITY;
  for (auto p : {ChamferPrecision::bfloat16, ChamferPrecision::float32}) {
    const std::string name = check::format("non-finite queries %s", p == ChamferPrecision::float32 ? "f32" : "bf16");
    if (!run->selected(name)) continue;
    std::unique_ptr<cuda::DeviceMultiVectors> s;
    std::vector<float> out(6);
    cuda::Result r = cuda::DeviceMultiVectors::create(d.x.data(), d.lengths.data(), 3, 12, p, &s);
    if (r.ok()) r = s->chamfer(q.x.data(), q.lengths.data(), 2, out.data());
    std::string error = r.message;
    for (std::size_t a = 0; a < 2 && error.empty(); ++a)
      for (std::size_t b = 0; b < 3 && error.empty(); ++b) {
        const double ref = reference(q, a, d, b, 12, p == ChamferPrecision::bfloat16).score;
        const float got = out[a * 3 + b];
        const bool same = (std::isnan(ref) && std::isnan(got)) || (std::isinf(ref) && ref == got) ||
                          (std::isfinite(ref) && std::fabs(got - ref) <= 1e-3 * (1 + std::fabs(ref)));
        if (!same) error = check::format("query %zu, document %zu: reference %g, device %g", a, b, ref, got);
      }
    run->record(name, error.empty(), error);
  }
}

// chamfer_topk against sorting the device's own scores (chamfer) by score descending, id ascending, NaN last:
// exactly. Duplicate documents tie; a poisoned document's scores are NaN.
void topk_case(const std::string& name, std::size_t docs, std::size_t nq, std::size_t k, bool with_ids,
               ChamferPrecision p) {
  if (!run->selected(name)) return;
  const std::size_t dim = 40;
  std::mt19937 rng(static_cast<unsigned>(std::hash<std::string>{}(name)));
  std::vector<std::int32_t> lengths = random_lengths(docs, 1, 20).draw(rng);
  for (std::size_t i = 3; i < docs; i += 5) lengths[i] = lengths[i - 3];  // document i a copy of i - 3: equal scores
  Clouds d = make_clouds(rng, lengths, dim);
  for (std::size_t i = 3; i < docs; i += 5)
    std::copy_n(d.x.begin() + static_cast<std::ptrdiff_t>(d.offset(i - 3) * dim), lengths[i] * dim,
                d.x.begin() + static_cast<std::ptrdiff_t>(d.offset(i) * dim));
  Clouds q = make_clouds(rng, random_lengths(nq, 1, 40).draw(rng), dim);
  if (docs > 4) d.x[d.offset(4) * dim] = INFINITY, d.x[d.offset(4) * dim + 1] = -INFINITY;  // NaN scores
  std::vector<std::int32_t> ids(docs);
  for (std::size_t i = 0; i < docs; ++i) ids[i] = static_cast<std::int32_t>(with_ids ? 1000 - 7 * i : i);
  std::unique_ptr<cuda::DeviceMultiVectors> store;
  cuda::Result r = cuda::DeviceMultiVectors::create(d.x.data(), d.lengths.data(), docs, dim, p, &store);
  const std::size_t kk = std::min(k, docs);
  std::vector<float> scores(nq * docs), top_scores(nq * kk);
  std::vector<std::int32_t> top_ids(nq * kk);
  if (r.ok()) r = store->chamfer(q.x.data(), q.lengths.data(), nq, scores.data());
  if (r.ok())
    r = store->chamfer_topk(q.x.data(), q.lengths.data(), nq, with_ids ? ids.data() : nullptr, k, top_ids.data(),
                            top_scores.data());
  if (!r.ok()) return run->record(name, false, r.message);
  for (std::size_t a = 0; a < nq; ++a) {
    std::vector<std::size_t> order(docs);
    for (std::size_t i = 0; i < docs; ++i) order[i] = i;
    const float* row = &scores[a * docs];
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
      if (std::isnan(row[x]) != std::isnan(row[y])) return std::isnan(row[y]);
      if (!std::isnan(row[x]) && row[x] != row[y]) return row[x] > row[y];
      return ids[x] < ids[y];
    });
    for (std::size_t rank = 0; rank < kk; ++rank) {
      const std::size_t want = order[rank], got = a * kk + rank;
      const bool same_score = row[want] == top_scores[got] || (std::isnan(row[want]) && std::isnan(top_scores[got]));
      if (ids[want] != top_ids[got] || !same_score)
        return run->record(name, false, check::format("query %zu rank %zu: expected (%d, %.9g), device (%d, %.9g)", a,
                                                      rank, ids[want], row[want], top_ids[got], top_scores[got]));
    }
  }
  run->record(name, true);
}

void topk_cases() {
  for (auto p : {ChamferPrecision::bfloat16, ChamferPrecision::float32}) {
    const char* pn = p == ChamferPrecision::bfloat16 ? "bf16" : "f32";
    topk_case(check::format("top-k %s k 1", pn), 60, 3, 1, true, p);
    topk_case(check::format("top-k %s k 10 positions", pn), 60, 4, 10, false, p);
    topk_case(check::format("top-k %s k above n", pn), 23, 2, 1024, true, p);
    topk_case(check::format("top-k %s 300 documents k 64", pn), 300, 2, 64, true, p);
    topk_case(check::format("top-k %s 3000 documents k 16", pn), 3000, 2, 16, true, p);
    const check::Tunable batches("kScratchFloats", 2000);
    topk_case(check::format("top-k %s queries in batches", pn), 80, 7, 10, true, p);
  }
  if (!run->selected("arguments: top-k")) return;
  std::vector<float> x(40, 0.5f), q(40, 0.25f), s(4);
  std::int32_t lengths[1] = {1}, ids[4];
  std::unique_ptr<cuda::DeviceMultiVectors> store;
  cuda::DeviceMultiVectors::create(x.data(), lengths, 1, 40, ChamferPrecision::float32, &store);
  for (std::size_t k : {0, 1025}) {
    const cuda::Result r = store->chamfer_topk(q.data(), lengths, 1, nullptr, k, ids, s.data());
    run->record(check::format("arguments: top-k k %zu", k), r.status == Status::invalid_argument, r.message);
  }
}

void argument_cases() {
  if (!run->selected("arguments")) return;
  auto invalid = [](const cuda::Result& r) { return r.status == Status::invalid_argument; };
  std::unique_ptr<cuda::DeviceMultiVectors> s;
  cuda::Result r = cuda::DeviceMultiVectors::create(nullptr, nullptr, 0, 5, ChamferPrecision::bfloat16, &s);
  run->record("arguments: no documents", r.ok() && s && s->size() == 0, r.message);
  float q[5] = {1, 2, 3, 4, 5}, x[10] = {}, out[2];
  std::int32_t one = 1, zero = 0, two_docs[2] = {1, 1}, empty_doc[2] = {1, 0};
  run->record("arguments: no documents, a query", s->chamfer(q, &one, 1, nullptr).ok());
  const auto f32 = ChamferPrecision::float32;
  run->record("arguments: create", cuda::DeviceMultiVectors::create(x, two_docs, 2, 5, f32, &s).ok());
  run->record("arguments: nq 0", s->chamfer(nullptr, nullptr, 0, nullptr).ok());
  run->record("arguments: a query of 0 tokens", invalid(s->chamfer(q, &zero, 1, out)));
  run->record("arguments: no scores", invalid(s->chamfer(q, &one, 1, nullptr)));
  run->record("arguments: a document of 0 tokens",
              invalid(cuda::DeviceMultiVectors::create(x, empty_doc, 2, 5, f32, &s)));
  run->record("arguments: dim 0", invalid(cuda::DeviceMultiVectors::create(x, two_docs, 2, 0, f32, &s)));
  run->record("arguments: no tokens", invalid(cuda::DeviceMultiVectors::create(nullptr, two_docs, 2, 5, f32, &s)));
  run->record("arguments: no output", invalid(cuda::DeviceMultiVectors::create(x, two_docs, 2, 5, f32, nullptr)));
}

}  // namespace

int main(int argc, char** argv) {
  check::Run checks("fde/chamfer.cu and common/row_topk.cu", argc, argv);
  run = &checks;
  argument_cases();
  for (auto p : {ChamferPrecision::bfloat16, ChamferPrecision::float32}) precision_cases(p);
  stress_cases();
  nonfinite_query_cases();
  topk_cases();
  return checks.finish();
}
