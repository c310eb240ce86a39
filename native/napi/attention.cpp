// Bindings of the attention module: exact attention (sync and async) and the LSE merge of two attention states.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "addon.h"
#include "args.h"
#include "async.h"
#include "calls.h"
#include "tessera/attention.h"
#include "tessera/memory.h"

namespace tessera::napi {
namespace {

constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 40;

attention::Layout layout_of(const Napi::CallbackInfo& info, std::size_t i) {
  return choice<attention::Layout>(info, i, "layout", {{"bshd", attention::Layout::bshd}, {"bhsd", attention::Layout::bhsd}});
}

}  // namespace

// (q, k, v, out, lse | null, dtype, layout, batch, headsQ, headsKV, seqQ, seqK, headDim, headDimV, scale,
//  temperature, softcap, causal, window, globalTokens, anchor, keyLengths | null, segments | null,
//  alibiSlopes | null, bias | null, biasBatch, biasHeads)
AttendCall parse_attend(const Napi::CallbackInfo& info, const char* function) {
  expect_arity(info, 27, 27, function);
  Napi::Env env = info.Env();
  AttendCall c;
  c.dtype = choice<attention::DType>(info, 5, "dtype", {{"float32", attention::DType::f32},
                                                        {"float16", attention::DType::f16},
                                                        {"bfloat16", attention::DType::bf16}});
  const bool f32 = c.dtype == attention::DType::f32;
  c.q = storage(info, 0, "q", f32), c.k = storage(info, 1, "k", f32), c.v = storage(info, 2, "v", f32);
  c.out = storage(info, 3, "out", f32);
  c.lse = optional_typed_array<float>(info, 4, "lse");
  attention::Shape& s = c.shape;
  s.layout = layout_of(info, 6);
  s.batch = integer(info, 7, "batch", 1, kMaxCount);
  s.heads_q = integer(info, 8, "headsQ", 1, kMaxCount);
  s.heads_kv = integer(info, 9, "headsKV", 1, kMaxCount);
  s.seq_q = integer(info, 10, "seqQ", 0, kMaxCount);
  s.seq_k = integer(info, 11, "seqK", 0, kMaxCount);
  s.head_dim = integer(info, 12, "headDim", 1, attention::kMaxHeadDim);
  s.head_dim_v = integer(info, 13, "headDimV", 1, attention::kMaxHeadDim);
  if (s.heads_q % s.heads_kv != 0)
    throw_range(env, "\"headsQ\" (" + str(s.heads_q) + ") must be a multiple of \"headsKV\" (" + str(s.heads_kv) + ")");
  const std::size_t nq = elements(env, {s.batch, s.heads_q, s.seq_q, s.head_dim}, "q");
  const std::size_t nk = elements(env, {s.batch, s.heads_kv, s.seq_k, s.head_dim}, "k");
  const std::size_t nv = elements(env, {s.batch, s.heads_kv, s.seq_k, s.head_dim_v}, "v");
  const std::size_t no = elements(env, {s.batch, s.heads_q, s.seq_q, s.head_dim_v}, "out");
  if (c.q.length != nq) throw_range(env, "\"q\" must hold " + str(nq) + " values, got " + str(c.q.length));
  if (c.k.length != nk) throw_range(env, "\"k\" must hold " + str(nk) + " values, got " + str(c.k.length));
  if (c.v.length != nv) throw_range(env, "\"v\" must hold " + str(nv) + " values, got " + str(c.v.length));
  if (c.out.length != no) throw_range(env, "\"out\" must hold " + str(no) + " values, got " + str(c.out.length));
  if (c.lse && c.lse->ElementLength() != s.batch * s.heads_q * s.seq_q)
    throw_range(env, "\"lse\" must hold batch × headsQ × seqQ values");
  attention::Options& o = c.options;
  o.scale = static_cast<float>(number(info, 14, "scale"));
  o.temperature = static_cast<float>(number(info, 15, "temperature"));
  o.softcap = static_cast<float>(number(info, 16, "softcap"));
  o.causal = boolean(info, 17, "causal");
  o.window = integer(info, 18, "window", 0, kMaxCount);
  o.global_tokens = integer(info, 19, "globalTokens", 0, kMaxCount);
  o.anchor = boolean(info, 20, "anchor");
  c.key_lengths = optional_typed_array<std::int32_t>(info, 21, "keyLengths");
  c.segments = optional_typed_array<std::int32_t>(info, 22, "segments");
  c.alibi = optional_typed_array<float>(info, 23, "alibiSlopes");
  c.bias = optional_typed_array<float>(info, 24, "bias");
  o.bias_batch = integer(info, 25, "biasBatch", 1, kMaxCount);
  o.bias_heads = integer(info, 26, "biasHeads", 1, kMaxCount);
  if (c.key_lengths) {
    if (c.key_lengths->ElementLength() != s.batch) throw_range(env, "\"keyLengths\" must hold batch values");
    o.key_lengths = c.key_lengths->Data();
  }
  if (c.segments) {
    if (c.segments->ElementLength() < 2) throw_range(env, "\"segments\" must hold at least 2 offsets");
    o.segments = c.segments->Data(), o.segment_count = c.segments->ElementLength() - 1;
  }
  if (c.alibi) {
    if (c.alibi->ElementLength() != s.heads_q) throw_range(env, "\"alibiSlopes\" must hold headsQ values");
    o.alibi_slopes = c.alibi->Data();
  }
  if (c.bias) {
    if (c.bias->ElementLength() != elements(env, {o.bias_batch, o.bias_heads, s.seq_q, s.seq_k}, "bias"))
      throw_range(env, "\"bias\" must hold biasBatch × biasHeads × seqQ × seqK values");
    o.bias = c.bias->Data();
  }
  // The kernel writes out (and lse) while it reads everything else.
  std::vector<std::pair<const void*, std::size_t>> inputs = {{c.q.bytes, c.q.byte_length}, {c.k.bytes, c.k.byte_length},
                                                             {c.v.bytes, c.v.byte_length}};
  for (const auto* a : {&c.alibi, &c.bias})
    if (*a) inputs.emplace_back((*a)->Data(), (*a)->ByteLength());
  for (const auto* a : {&c.key_lengths, &c.segments})
    if (*a) inputs.emplace_back((*a)->Data(), (*a)->ByteLength());
  for (const auto& [p, n] : inputs) {
    if (bytes_overlap(c.out.bytes, c.out.byte_length, p, n) || (c.lse && bytes_overlap(c.lse->Data(), c.lse->ByteLength(), p, n)))
      throw_range(env, "\"out\" or \"lse\" overlaps an input");
  }
  if (c.lse && bytes_overlap(c.lse->Data(), c.lse->ByteLength(), c.out.bytes, c.out.byte_length))
    throw_range(env, "\"lse\" overlaps \"out\"");
  return c;
}

std::vector<Napi::Object> inputs_of(const AttendCall& c) {
  std::vector<Napi::Object> keep = {c.q.array, c.k.array, c.v.array};
  if (c.lse) keep.push_back(*c.lse);
  if (c.alibi) keep.push_back(*c.alibi);
  if (c.bias) keep.push_back(*c.bias);
  if (c.key_lengths) keep.push_back(*c.key_lengths);
  if (c.segments) keep.push_back(*c.segments);
  return keep;
}

// (outA, lseA, outB, lseB, out, lse, layout, batch, heads, seq, dim)
MergeCall parse_merge(const Napi::CallbackInfo& info, const char* function) {
  expect_arity(info, 11, 11, function);
  Napi::Env env = info.Env();
  auto out_a = typed_array<float>(info, 0, "outA");
  auto lse_a = typed_array<float>(info, 1, "lseA");
  auto out_b = typed_array<float>(info, 2, "outB");
  auto lse_b = typed_array<float>(info, 3, "lseB");
  auto out = typed_array<float>(info, 4, "out");
  auto lse = typed_array<float>(info, 5, "lse");
  attention::MergeShape s;
  s.layout = layout_of(info, 6);
  s.batch = integer(info, 7, "batch", 1, kMaxCount);
  s.heads = integer(info, 8, "heads", 1, kMaxCount);
  s.seq = integer(info, 9, "seq", 0, kMaxCount);
  s.dim = integer(info, 10, "dim", 1, kMaxCount);
  std::size_t rows = 0, n = 0;
  if (!element_count({s.batch, s.heads, s.seq}, &rows) || !element_count({rows, s.dim}, &n))
    throw_range(env, "the shape holds too many values");
  for (const auto* a : {&out_a, &out_b, &out})
    if (a->ElementLength() != n) throw_range(env, "outputs must hold batch × heads × seq × dim = " + str(n) + " values");
  for (const auto* a : {&lse_a, &lse_b, &lse})
    if (a->ElementLength() != rows) throw_range(env, "LSEs must hold batch × heads × seq = " + str(rows) + " values");
  // In place (out is outA or outB, lse likewise) works row by row; any other overlap would not.
  auto partial = [](const Napi::Float32Array& x, const Napi::Float32Array& y) {
    return bytes_overlap(x.Data(), x.ByteLength(), y.Data(), y.ByteLength()) &&
           !(x.Data() == y.Data() && x.ByteLength() == y.ByteLength());
  };
  if (partial(out, out_a) || partial(out, out_b) || partial(lse, lse_a) || partial(lse, lse_b) ||
      bytes_overlap(out.Data(), out.ByteLength(), lse.Data(), lse.ByteLength()))
    throw_range(env, "\"out\" and \"lse\" may be the inputs themselves, but must not partly overlap them or each other");
  return {out_a, lse_a, out_b, lse_b, out, lse, s};
}

namespace {



Napi::Value Attend(const Napi::CallbackInfo& info) {
  AttendCall c = parse_attend(info, "attention");
  check(info.Env(),
        attention::attend(c.q.bytes, c.k.bytes, c.v.bytes, c.dtype, c.shape, c.options, c.out.bytes,
                          c.lse ? c.lse->Data() : nullptr),
        "attention");
  return c.out.array;
}

Napi::Value AttendAsync(const Napi::CallbackInfo& info) {
  AttendCall c = parse_attend(info, "attentionAsync");
  auto kernel = [q = c.q.bytes, k = c.k.bytes, v = c.v.bytes, dtype = c.dtype, shape = c.shape, options = c.options,
                 out = c.out.bytes, lse = c.lse ? c.lse->Data() : nullptr] {
    return attention::attend(q, k, v, dtype, shape, options, out, lse);
  };
  return KernelWorker::Start(info.Env(), "attentionAsync", kernel, c.out.array, inputs_of(c));
}

Napi::Value MergeStates(const Napi::CallbackInfo& info) {
  MergeCall c = parse_merge(info, "mergeAttentionStates");
  check(info.Env(),
        attention::merge_states(c.out_a.Data(), c.lse_a.Data(), c.out_b.Data(), c.lse_b.Data(), c.shape, c.out.Data(),
                                c.lse.Data()),
        "mergeAttentionStates");
  return info.Env().Undefined();
}

}  // namespace

void register_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New(env, Attend, "attention"));
  exports.Set("attentionAsync", Napi::Function::New(env, AttendAsync, "attentionAsync"));
  exports.Set("mergeAttentionStates", Napi::Function::New(env, MergeStates, "mergeAttentionStates"));
}

}  // namespace tessera::napi
