#include "args.h"

#include <cmath>
#include <type_traits>

#include "tessera/memory.h"

namespace tessera::napi {
namespace {

template <class T>
constexpr napi_typedarray_type typed_array_kind() {
  if constexpr (std::is_same_v<T, float>) return napi_float32_array;
  if constexpr (std::is_same_v<T, double>) return napi_float64_array;
  if constexpr (std::is_same_v<T, std::uint8_t>) return napi_uint8_array;
  if constexpr (std::is_same_v<T, std::int8_t>) return napi_int8_array;
  if constexpr (std::is_same_v<T, std::uint16_t>) return napi_uint16_array;
  if constexpr (std::is_same_v<T, std::int32_t>) return napi_int32_array;
  if constexpr (std::is_same_v<T, std::uint32_t>) return napi_uint32_array;
  if constexpr (std::is_same_v<T, std::uint64_t>) return napi_biguint64_array;
}

template <class T>
constexpr const char* typed_array_name() {
  if constexpr (std::is_same_v<T, float>) return "Float32Array";
  if constexpr (std::is_same_v<T, double>) return "Float64Array";
  if constexpr (std::is_same_v<T, std::uint8_t>) return "Uint8Array";
  if constexpr (std::is_same_v<T, std::int8_t>) return "Int8Array";
  if constexpr (std::is_same_v<T, std::uint16_t>) return "Uint16Array";
  if constexpr (std::is_same_v<T, std::int32_t>) return "Int32Array";
  if constexpr (std::is_same_v<T, std::uint32_t>) return "Uint32Array";
  if constexpr (std::is_same_v<T, std::uint64_t>) return "BigUint64Array";
}

std::string quoted(const char* name) { return std::string("\"") + name + "\""; }

Napi::Value arg(const Napi::CallbackInfo& info, std::size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

}  // namespace

std::string describe(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_function: return "function";
    case napi_bigint: return "bigint";
    case napi_external: return "external";
    case napi_object: break;
  }
  // Objects: the constructor's name, read without running user code (no getters are called).
  if (v.IsTypedArray()) {
    switch (v.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_int8_array: return "Int8Array";
      case napi_uint8_array: return "Uint8Array";
      case napi_uint8_clamped_array: return "Uint8ClampedArray";
      case napi_int16_array: return "Int16Array";
      case napi_uint16_array: return "Uint16Array";
      case napi_int32_array: return "Int32Array";
      case napi_uint32_array: return "Uint32Array";
      case napi_float32_array: return "Float32Array";
      case napi_float64_array: return "Float64Array";
      case napi_bigint64_array: return "BigInt64Array";
      case napi_biguint64_array: return "BigUint64Array";
      default: return "TypedArray";
    }
  }
  if (v.IsArray()) return "Array";
  if (v.IsArrayBuffer()) return "ArrayBuffer";
  if (v.IsDataView()) return "DataView";
  return "object";
}

void throw_type(Napi::Env env, const std::string& message) { throw Napi::TypeError::New(env, message); }
void throw_range(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }

void throw_status(Napi::Env env, Status s, const std::string& context) {
  const std::string message = context + ": " + status_name(s);
  if (s == Status::invalid_argument) throw Napi::RangeError::New(env, message);
  throw Napi::Error::New(env, message);
}

void expect_arity(const Napi::CallbackInfo& info, std::size_t min, std::size_t max, const char* function) {
  if (info.Length() < min || info.Length() > max) {
    const std::string expected =
        min == max ? std::to_string(min) : std::to_string(min) + " to " + std::to_string(max);
    throw_type(info.Env(), std::string(function) + " expects " + expected + " arguments, got " +
                               std::to_string(info.Length()));
  }
}

template <class T>
Napi::TypedArrayOf<T> typed_array(const Napi::CallbackInfo& info, std::size_t i, const char* name) {
  const Napi::Value v = arg(info, i);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != typed_array_kind<T>())
    throw_type(info.Env(), "Expected " + quoted(name) + " to be a " + typed_array_name<T>() + ", got " + describe(v));
  auto a = v.As<Napi::TypedArrayOf<T>>();
  // A detached buffer reports a null data pointer; treat it as a bad value rather than read through it.
  if (a.ElementLength() > 0 && a.Data() == nullptr) throw_range(info.Env(), quoted(name) + " is detached");
  return a;
}

template Napi::TypedArrayOf<float> typed_array<float>(const Napi::CallbackInfo&, std::size_t, const char*);
template Napi::TypedArrayOf<double> typed_array<double>(const Napi::CallbackInfo&, std::size_t, const char*);
template Napi::TypedArrayOf<std::uint8_t> typed_array<std::uint8_t>(const Napi::CallbackInfo&, std::size_t,
                                                                    const char*);
template Napi::TypedArrayOf<std::uint16_t> typed_array<std::uint16_t>(const Napi::CallbackInfo&, std::size_t,
                                                                      const char*);
template Napi::TypedArrayOf<std::int32_t> typed_array<std::int32_t>(const Napi::CallbackInfo&, std::size_t,
                                                                    const char*);
template Napi::TypedArrayOf<std::uint32_t> typed_array<std::uint32_t>(const Napi::CallbackInfo&, std::size_t,
                                                                      const char*);
template Napi::TypedArrayOf<std::int8_t> typed_array<std::int8_t>(const Napi::CallbackInfo&, std::size_t,
                                                                  const char*);
template Napi::TypedArrayOf<std::uint64_t> typed_array<std::uint64_t>(const Napi::CallbackInfo&, std::size_t,
                                                                      const char*);

std::uint64_t integer(const Napi::CallbackInfo& info, std::size_t i, const char* name, std::uint64_t min,
                      std::uint64_t max) {
  const Napi::Value v = arg(info, i);
  std::uint64_t value = 0;
  const std::string range = " must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (v.IsNumber()) {
    const double d = v.As<Napi::Number>().DoubleValue();
    // 2^64 as a double: anything at or above it cannot convert.
    if (!std::isfinite(d) || d != std::floor(d) || d < 0 || d >= 18446744073709551616.0)
      throw_range(info.Env(), quoted(name) + range + ", got " + v.ToString().Utf8Value());
    value = static_cast<std::uint64_t>(d);
  } else if (v.IsBigInt()) {
    bool lossless = false;
    value = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw_range(info.Env(), quoted(name) + range);
  } else {
    throw_type(info.Env(), "Expected " + quoted(name) + " to be a number, got " + describe(v));
  }
  if (value < min || value > max)
    throw_range(info.Env(), quoted(name) + range + ", got " + std::to_string(value));
  return value;
}

std::uint64_t u64(const Napi::CallbackInfo& info, std::size_t i, const char* name) {
  return integer(info, i, name, 0, UINT64_MAX);
}

bool boolean(const Napi::CallbackInfo& info, std::size_t i, const char* name) {
  const Napi::Value v = arg(info, i);
  if (!v.IsBoolean()) throw_type(info.Env(), "Expected " + quoted(name) + " to be a boolean, got " + describe(v));
  return v.As<Napi::Boolean>().Value();
}

double number(const Napi::CallbackInfo& info, std::size_t i, const char* name) {
  const Napi::Value v = arg(info, i);
  if (!v.IsNumber()) throw_type(info.Env(), "Expected " + quoted(name) + " to be a number, got " + describe(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (std::isnan(d)) throw_range(info.Env(), quoted(name) + " must not be NaN");
  return d;
}

std::string string(const Napi::CallbackInfo& info, std::size_t i, const char* name) {
  const Napi::Value v = arg(info, i);
  if (!v.IsString()) throw_type(info.Env(), "Expected " + quoted(name) + " to be a string, got " + describe(v));
  return v.As<Napi::String>().Utf8Value();
}

Bytes bytes(const Napi::CallbackInfo& info, std::size_t i, const char* name) {
  const Napi::Value v = arg(info, i);
  if (v.IsTypedArray()) {
    auto a = v.As<Napi::TypedArray>();
    auto* base = static_cast<std::uint8_t*>(a.ArrayBuffer().Data());
    if (a.ByteLength() > 0 && base == nullptr) throw_range(info.Env(), quoted(name) + " is detached");
    return {base ? base + a.ByteOffset() : nullptr, a.ByteLength()};
  }
  if (v.IsDataView()) {
    auto d = v.As<Napi::DataView>();
    auto* base = static_cast<std::uint8_t*>(d.ArrayBuffer().Data());
    if (d.ByteLength() > 0 && base == nullptr) throw_range(info.Env(), quoted(name) + " is detached");
    return {base ? base + d.ByteOffset() : nullptr, d.ByteLength()};
  }
  if (v.IsArrayBuffer()) {
    auto b = v.As<Napi::ArrayBuffer>();
    return {static_cast<std::uint8_t*>(b.Data()), b.ByteLength()};
  }
  throw_type(info.Env(), "Expected " + quoted(name) + " to be an ArrayBuffer or a view of one, got " + describe(v));
}

Storage storage(const Napi::CallbackInfo& info, std::size_t i, const char* name, bool float32) {
  Storage d;
  if (float32) {
    auto a = typed_array<float>(info, i, name);
    d.array = a, d.bytes = a.Data(), d.length = a.ElementLength(), d.byte_length = a.ByteLength();
  } else {
    auto a = typed_array<std::uint16_t>(info, i, name);
    d.array = a, d.bytes = a.Data(), d.length = a.ElementLength(), d.byte_length = a.ByteLength();
  }
  return d;
}

std::size_t elements(Napi::Env env, std::initializer_list<std::size_t> factors, const char* name) {
  std::size_t n = 0;
  if (!element_count(factors, &n)) throw_range(env, std::string("\"") + name + "\" would hold too many values");
  return n;
}

}  // namespace tessera::napi
