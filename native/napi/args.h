// Argument checks for the bindings. The TypeScript layer validates first and says more; these checks exist so that
// a call through the raw binding with any arguments at all throws instead of crashing the process.
// Wrong type -> TypeError, bad value or shape -> RangeError, each naming the argument.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tessera/status.h"

namespace tessera::napi {

// "Float32Array", "Array", "string", "undefined" ... for messages.
std::string describe(const Napi::Value& v);

[[noreturn]] void throw_type(Napi::Env env, const std::string& message);
[[noreturn]] void throw_range(Napi::Env env, const std::string& message);
// Maps a core status to a JavaScript error: invalid_argument -> RangeError, anything else -> Error.
[[noreturn]] void throw_status(Napi::Env env, Status s, const std::string& context);
inline void check(Napi::Env env, Status s, const std::string& context) {
  if (s != Status::ok) throw_status(env, s, context);
}

void expect_arity(const Napi::CallbackInfo& info, std::size_t min, std::size_t max, const char* function);

template <class T>
Napi::TypedArrayOf<T> typed_array(const Napi::CallbackInfo& info, std::size_t i, const char* name);
inline bool has_value(const Napi::CallbackInfo& info, std::size_t i) {
  return i < info.Length() && !info[i].IsUndefined() && !info[i].IsNull();
}

// An integer in [min, max] given as a Number (exactly integral) or BigInt.
std::uint64_t integer(const Napi::CallbackInfo& info, std::size_t i, const char* name, std::uint64_t min,
                      std::uint64_t max);
// Any unsigned 64-bit value: a BigInt in [0, 2^64) or a safe non-negative Number (seeds, offsets).
std::uint64_t u64(const Napi::CallbackInfo& info, std::size_t i, const char* name);
bool boolean(const Napi::CallbackInfo& info, std::size_t i, const char* name);
// Any number but NaN (infinities allowed).
double number(const Napi::CallbackInfo& info, std::size_t i, const char* name);
std::string string(const Napi::CallbackInfo& info, std::size_t i, const char* name);

// A typed array argument that may be undefined or null.
template <class T>
std::optional<Napi::TypedArrayOf<T>> optional_typed_array(const Napi::CallbackInfo& info, std::size_t i,
                                                          const char* name) {
  if (!has_value(info, i)) return std::nullopt;
  return typed_array<T>(info, i, name);
}

// Bytes of any ArrayBuffer view (typed array or DataView) or ArrayBuffer.
struct Bytes {
  std::uint8_t* data;
  std::size_t size;
};
Bytes bytes(const Napi::CallbackInfo& info, std::size_t i, const char* name);

// Numbers in messages.
inline std::string str(std::size_t n) { return std::to_string(n); }

// The element count of an array argument from its shape factors: RangeError naming it when the product overflows,
// so a shape is refused before anything is allocated or read.
std::size_t elements(Napi::Env env, std::initializer_list<std::size_t> factors, const char* name);

// A typed array argument that must hold exactly n elements (RangeError naming it otherwise).
template <class T>
Napi::TypedArrayOf<T> exactly(const Napi::CallbackInfo& info, std::size_t i, const char* name, std::size_t n) {
  auto a = typed_array<T>(info, i, name);
  if (a.ElementLength() != n)
    throw_range(info.Env(), std::string("\"") + name + "\" must hold " + str(n) + " values, got " + str(a.ElementLength()));
  return a;
}

// A string argument that must be one of `options` (label, value): RangeError listing them otherwise.
template <class T>
T choice(const Napi::CallbackInfo& info, std::size_t i, const char* name,
         std::initializer_list<std::pair<const char*, T>> options) {
  const std::string s = string(info, i, name);
  std::string known;
  for (const auto& [label, value] : options) {
    if (s == label) return value;
    known.append(known.empty() ? "'" : ", '").append(label).append("'");
  }
  std::string message = "\"";
  message.append(name).append("\" must be one of ").append(known).append(", got '").append(s).append("'");
  throw_range(info.Env(), message);
}

// A typed array copied into a vector (state the core keeps), and a vector copied out into a new typed array.
template <class T>
std::vector<T> copy_in(const Napi::TypedArrayOf<T>& a) {
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

template <class T>
Napi::TypedArrayOf<T> copy_out(Napi::Env env, const std::vector<T>& v) {
  auto a = Napi::TypedArrayOf<T>::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(T));
  return a;
}

// Tensor storage read in place: a Float32Array (float32) or a Uint16Array (the bits of float16 or bfloat16).
struct Storage {
  Napi::TypedArray array;
  void* bytes = nullptr;
  std::size_t length = 0, byte_length = 0;
};
Storage storage(const Napi::CallbackInfo& info, std::size_t i, const char* name, bool float32);

}  // namespace tessera::napi
