// Bindings of the positions module: RoPE applied in place (sync and async) and its cos/sin tables.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "addon.h"
#include "args.h"
#include "async.h"
#include "calls.h"
#include "tessera/memory.h"
#include "tessera/rope.h"

namespace tessera::napi {
namespace {

constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 40;

}  // namespace

PositionsArg positions_arg(const Napi::CallbackInfo& info, std::size_t i) {
  const Napi::Value v = i < info.Length() ? info[i] : info.Env().Undefined();
  if (!v.IsTypedArray())
    throw_type(info.Env(), "Expected \"positions\" to be an Int32Array, Float32Array or Float64Array, got " + describe(v));
  PositionsArg p;
  p.array = v.As<Napi::TypedArray>();
  p.length = p.array.ElementLength();
  switch (p.array.TypedArrayType()) {
    case napi_int32_array: p.positions.type = rope::PositionType::i32; break;
    case napi_float32_array: p.positions.type = rope::PositionType::f32; break;
    case napi_float64_array: p.positions.type = rope::PositionType::f64; break;
    default:
      throw_type(info.Env(), "Expected \"positions\" to be an Int32Array, Float32Array or Float64Array, got " + describe(v));
  }
  p.positions.data = static_cast<const std::uint8_t*>(p.array.ArrayBuffer().Data()) + p.array.ByteOffset();
  return p;
}

// (data, dtype, layout, batch, seqLen, heads, headDim, rotaryDim, positions, invFreq | null, cos | null,
//  sin | null, attentionFactor, style)
ApplyCall parse_apply(const Napi::CallbackInfo& info, const char* function) {
  expect_arity(info, 14, 14, function);
  Napi::Env env = info.Env();
  ApplyCall c;
  c.dtype = choice<rope::DType>(info, 1, "dtype",
                                {{"float32", rope::DType::f32}, {"float16", rope::DType::f16}, {"bfloat16", rope::DType::bf16}});
  const Storage data = storage(info, 0, "data", c.dtype == rope::DType::f32);
  c.data = data.array, c.bytes = data.bytes, c.byte_length = data.byte_length;
  c.shape.layout = choice<rope::Layout>(info, 2, "layout", {{"bshd", rope::Layout::bshd}, {"bhsd", rope::Layout::bhsd}});
  c.shape.batch = integer(info, 3, "batch", 1, kMaxCount);
  c.shape.seq_len = integer(info, 4, "seqLen", 0, kMaxCount);
  c.shape.heads = integer(info, 5, "heads", 1, kMaxCount);
  c.shape.head_dim = integer(info, 6, "headDim", 2, kMaxCount);
  c.shape.rotary_dim = integer(info, 7, "rotaryDim", 2, kMaxCount);
  if (c.shape.rotary_dim % 2 != 0 || c.shape.rotary_dim > c.shape.head_dim)
    throw_range(env, "\"rotaryDim\" must be even and at most \"headDim\" (" + str(c.shape.head_dim) + "), got " +
                         str(c.shape.rotary_dim));
  std::size_t tokens = 0, elements = 0;
  if (!element_count({c.shape.batch, c.shape.seq_len}, &tokens) ||
      !element_count({tokens, c.shape.heads, c.shape.head_dim}, &elements))
    throw_range(env, "batch × seqLen × heads × headDim is too large");
  if (c.data.ElementLength() != elements)
    throw_range(env, "\"data\" must hold batch × seqLen × heads × headDim = " + str(elements) + " values, got " +
                         str(c.data.ElementLength()));
  c.positions = positions_arg(info, 8);
  if (c.positions.length == tokens && c.shape.batch > 1) c.positions.positions.per_batch = true;
  else if (c.positions.length != c.shape.seq_len)
    throw_range(env, "\"positions\" must hold seqLen (" + str(c.shape.seq_len) + ") or batch × seqLen (" + str(tokens) +
                         ") values, got " + str(c.positions.length));
  const std::size_t half = c.shape.rotary_dim / 2;
  c.inv_freq = optional_typed_array<double>(info, 9, "invFreq");
  c.cos = optional_typed_array<float>(info, 10, "cos");
  c.sin = optional_typed_array<float>(info, 11, "sin");
  if (c.inv_freq.has_value() == (c.cos.has_value() || c.sin.has_value()))
    throw_range(env, "Give either \"invFreq\" or both \"cos\" and \"sin\"");
  if (c.inv_freq) {
    if (c.inv_freq->ElementLength() != half)
      throw_range(env, "\"invFreq\" must hold rotaryDim / 2 = " + str(half) + " values, got " + str(c.inv_freq->ElementLength()));
    c.angles.inv_freq = c.inv_freq->Data();
  } else {
    if (!c.cos || !c.sin) throw_range(env, "\"cos\" and \"sin\" must be given together");
    if (c.cos->ElementLength() != c.sin->ElementLength() || c.cos->ElementLength() == 0 ||
        c.cos->ElementLength() % half != 0)
      throw_range(env, "\"cos\" and \"sin\" must both hold rows × rotaryDim / 2 (" + str(half) + ") values, got " +
                           str(c.cos->ElementLength()) + " and " + str(c.sin->ElementLength()));
    c.angles.cos = c.cos->Data(), c.angles.sin = c.sin->Data(), c.angles.table_rows = c.cos->ElementLength() / half;
  }
  c.angles.attention_factor = number(info, 12, "attentionFactor");
  c.style = choice<rope::Style>(info, 13, "style", {{"neox", rope::Style::neox}, {"interleaved", rope::Style::interleaved}});
  // The kernel reads positions and angles while it writes data: they must not share bytes.
  auto overlaps = [&](const void* p, std::size_t n) { return bytes_overlap(c.bytes, c.byte_length, p, n); };
  if (overlaps(c.positions.positions.data, c.positions.array.ByteLength()) ||
      (c.inv_freq && overlaps(c.inv_freq->Data(), c.inv_freq->ByteLength())) ||
      (c.cos && overlaps(c.cos->Data(), c.cos->ByteLength())) || (c.sin && overlaps(c.sin->Data(), c.sin->ByteLength())))
    throw_range(env, "\"data\" overlaps \"positions\" or the angles");
  c.positions.positions.data = c.positions.length ? c.positions.positions.data : nullptr;
  return c;
}

std::vector<Napi::Object> inputs_of(const ApplyCall& c) {
  std::vector<Napi::Object> keep = {c.positions.array};
  if (c.inv_freq) keep.push_back(*c.inv_freq);
  if (c.cos) keep.push_back(*c.cos), keep.push_back(*c.sin);
  return keep;
}

namespace {


Napi::Value ApplyRope(const Napi::CallbackInfo& info) {
  ApplyCall c = parse_apply(info, "applyRope");
  check(info.Env(), rope::apply(c.bytes, c.dtype, c.shape, c.style, c.positions.positions, c.angles), "applyRope");
  return c.data;
}

Napi::Value ApplyRopeAsync(const Napi::CallbackInfo& info) {
  ApplyCall c = parse_apply(info, "applyRopeAsync");
  auto kernel = [bytes = c.bytes, dtype = c.dtype, shape = c.shape, style = c.style, positions = c.positions.positions,
                 angles = c.angles] { return rope::apply(bytes, dtype, shape, style, positions, angles); };
  return KernelWorker::Start(info.Env(), "applyRopeAsync", kernel, c.data, inputs_of(c));
}

// (positions, invFreq: Float64Array, attentionFactor) -> { cos, sin }: Float32Arrays of positions × invFreq.length.
Napi::Value RopeCosSin(const Napi::CallbackInfo& info) {
  expect_arity(info, 3, 3, "ropeCosSin");
  PositionsArg p = positions_arg(info, 0);
  auto inv_freq = typed_array<double>(info, 1, "invFreq");
  const double factor = number(info, 2, "attentionFactor");
  const std::size_t half = inv_freq.ElementLength();
  if (half == 0) throw_range(info.Env(), "\"invFreq\" must not be empty");
  if (p.length > kMaxCount / half) throw_range(info.Env(), "positions × invFreq.length is too large");
  auto cos = Napi::Float32Array::New(info.Env(), p.length * half);
  auto sin = Napi::Float32Array::New(info.Env(), p.length * half);
  p.positions.data = p.length ? p.positions.data : nullptr;
  check(info.Env(), rope::cos_sin(p.positions, p.length, inv_freq.Data(), half, factor, cos.Data(), sin.Data()),
        "ropeCosSin");
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("cos", cos);
  out.Set("sin", sin);
  return out;
}

}  // namespace

void register_rope(Napi::Env env, Napi::Object exports) {
  exports.Set("applyRope", Napi::Function::New(env, ApplyRope, "applyRope"));
  exports.Set("applyRopeAsync", Napi::Function::New(env, ApplyRopeAsync, "applyRopeAsync"));
  exports.Set("ropeCosSin", Napi::Function::New(env, RopeCosSin, "ropeCosSin"));
}

}  // namespace tessera::napi
