// Parsed calls of the attention and positions bindings, shared by the CPU bindings (attention.cpp, rope.cpp) and
// the CUDA ones (cuda_attention.cpp), so both backends take exactly the same arguments with the same checks.
#pragma once

#include <napi.h>

#include <optional>
#include <vector>

#include "args.h"
#include "tessera/attention.h"
#include "tessera/rope.h"

namespace tessera::napi {

// ---- attention ---------------------------------------------------------------------------------------------------

struct AttendCall {
  Storage q, k, v, out;
  std::optional<Napi::Float32Array> lse, alibi, bias;
  std::optional<Napi::Int32Array> key_lengths, segments;
  attention::DType dtype = attention::DType::f32;
  attention::Shape shape;
  attention::Options options;
};

// Checks every argument of attention()/attentionAsync() (see attention.cpp for the order); throws TypeError or
// RangeError naming the argument.
AttendCall parse_attend(const Napi::CallbackInfo& info, const char* function);
// The arrays an asynchronous call must keep alive (out is its result).
std::vector<Napi::Object> inputs_of(const AttendCall& c);

struct MergeCall {
  Napi::Float32Array out_a, lse_a, out_b, lse_b, out, lse;
  attention::MergeShape shape;
};
MergeCall parse_merge(const Napi::CallbackInfo& info, const char* function);

// ---- RoPE --------------------------------------------------------------------------------------------------------

// A positions array: Int32Array, Float32Array or Float64Array, read in place.
struct PositionsArg {
  Napi::TypedArray array;
  rope::Positions positions;
  std::size_t length = 0;
};

struct ApplyCall {
  Napi::TypedArray data;
  void* bytes = nullptr;
  std::size_t byte_length = 0;
  rope::DType dtype = rope::DType::f32;
  rope::Shape shape;
  rope::Style style = rope::Style::neox;
  PositionsArg positions;
  std::optional<Napi::Float64Array> inv_freq;
  std::optional<Napi::Float32Array> cos, sin;
  rope::Angles angles;
};

PositionsArg positions_arg(const Napi::CallbackInfo& info, std::size_t i);
ApplyCall parse_apply(const Napi::CallbackInfo& info, const char* function);
std::vector<Napi::Object> inputs_of(const ApplyCall& c);

}  // namespace tessera::napi
