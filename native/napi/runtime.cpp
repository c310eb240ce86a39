// Bindings of the runtime: what this build and CPU can do, threads, dispatch level, the random generator, CRC-32C.
#include <cstdint>
#include <cstring>

#include "addon.h"
#include "args.h"
#include "tessera/checksum.h"
#include "tessera/memory.h"
#include "tessera/rng.h"
#include "tessera/runtime.h"

namespace tessera::napi {
namespace {

Napi::Array available_levels(Napi::Env env) {
  Napi::Array list = Napi::Array::New(env);
  const SimdLevel all[] = {SimdLevel::scalar, SimdLevel::neon, SimdLevel::avx2, SimdLevel::avx512,
                           SimdLevel::avx512_vpopcntdq};
  std::uint32_t n = 0;
  for (SimdLevel l : all)
    if (simd_level_available(l)) list.Set(n++, Napi::String::New(env, simd_level_name(l)));
  return list;
}

Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  expect_arity(info, 0, 0, "capabilities");
  Napi::Env env = info.Env();
  Napi::Object c = Napi::Object::New(env);
  c.Set("simd", simd_level_name(active_simd_level()));
  c.Set("simdDetected", simd_level_name(detected_simd_level()));
  c.Set("simdAvailable", available_levels(env));
  c.Set("threads", Napi::Number::New(env, static_cast<double>(thread_count())));
  c.Set("maxThreads", Napi::Number::New(env, static_cast<double>(kMaxThreads)));
#ifdef TESSERA_WITH_CUDA
  c.Set("cudaBuild", true);
#else
  c.Set("cudaBuild", false);
#endif
  return c;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  expect_arity(info, 1, 1, "setThreads");
  const std::uint64_t n = integer(info, 0, "threads", 1, kMaxThreads);
  check(info.Env(), set_thread_count(static_cast<std::size_t>(n)), "setThreads");
  return Napi::Number::New(info.Env(), static_cast<double>(thread_count()));
}

Napi::Value SetSimd(const Napi::CallbackInfo& info) {
  expect_arity(info, 1, 1, "setSimd");
  const std::string name = string(info, 0, "level");
  SimdLevel level;
  if (!parse_simd_level(name.c_str(), &level))
    throw_range(info.Env(), "\"level\" must be one of scalar, neon, avx2, avx512, avx512-vpopcntdq, got " + name);
  if (set_simd_level(level) != Status::ok)
    throw_range(info.Env(), "\"level\" " + name + " is not supported by this CPU");
  return Napi::String::New(info.Env(), simd_level_name(active_simd_level()));
}

// (kind: 'u64' | 'uniform' | 'normal' | 'signs', seed, offset, out: BigUint64Array | Float32Array)
Napi::Value RngFill(const Napi::CallbackInfo& info) {
  expect_arity(info, 4, 4, "rngFill");
  const std::string kind = string(info, 0, "kind");
  const std::uint64_t seed = u64(info, 1, "seed");
  const std::uint64_t offset = u64(info, 2, "offset");
  if (kind == "u64") {
    auto out = typed_array<std::uint64_t>(info, 3, "out");
    if (offset > UINT64_MAX - out.ElementLength()) throw_range(info.Env(), "\"offset\" + length exceeds 2^64 - 1");
    rng::fill_u64(seed, offset, out.Data(), out.ElementLength());
    return out;
  }
  auto out = typed_array<float>(info, 3, "out");
  if (offset > UINT64_MAX - out.ElementLength()) throw_range(info.Env(), "\"offset\" + length exceeds 2^64 - 1");
  if (kind == "uniform")
    rng::fill_uniform(seed, offset, out.Data(), out.ElementLength());
  else if (kind == "normal")
    rng::fill_normal(seed, offset, out.Data(), out.ElementLength());
  else if (kind == "signs")
    rng::fill_signs(seed, offset, out.Data(), out.ElementLength());
  else
    throw_range(info.Env(), "\"kind\" must be one of u64, uniform, normal, signs, got " + kind);
  return out;
}

Napi::Value RngDerive(const Napi::CallbackInfo& info) {
  expect_arity(info, 2, 2, "rngDerive");
  const std::uint64_t seed = u64(info, 0, "seed");
  const std::uint64_t label = u64(info, 1, "label");
  return Napi::BigInt::New(info.Env(), rng::derive(seed, label));
}

Napi::Value Crc32c(const Napi::CallbackInfo& info) {
  expect_arity(info, 1, 2, "crc32c");
  const Bytes b = bytes(info, 0, "data");
  const std::uint64_t previous = has_value(info, 1) ? integer(info, 1, "crc", 0, UINT32_MAX) : 0;
  return Napi::Number::New(info.Env(), crc32c(b.data, b.size, static_cast<std::uint32_t>(previous)));
}

// (dst, src): a threaded memcpy, the bandwidth yardstick of bench/. Same byte length required; no overlap.
Napi::Value CopyBytes(const Napi::CallbackInfo& info) {
  expect_arity(info, 2, 2, "copyBytes");
  const Bytes dst = bytes(info, 0, "dst");
  const Bytes src = bytes(info, 1, "src");
  if (dst.size != src.size) throw_range(info.Env(), "\"dst\" and \"src\" must have the same byte length");
  if (bytes_overlap(dst.data, dst.size, src.data, src.size)) throw_range(info.Env(), "\"dst\" and \"src\" overlap");
  parallel_copy(dst.data, src.data, dst.size);
  return info.Env().Undefined();
}

// (data) -> an XOR of its words, read over the pool: the read-bandwidth yardstick of bench/.
Napi::Value ReadBytes(const Napi::CallbackInfo& info) {
  expect_arity(info, 1, 1, "readBytes");
  const Bytes b = bytes(info, 0, "data");
  return Napi::Number::New(info.Env(), static_cast<double>(parallel_read(b.data, b.size) & 0xFFFFFFFFu));
}

// (flops) -> runs about that many FMA flops over the pool: the FMA-peak yardstick of bench/.
Napi::Value FmaWork(const Napi::CallbackInfo& info) {
  expect_arity(info, 1, 1, "fmaWork");
  const std::uint64_t flops = integer(info, 0, "flops", 0, std::uint64_t{1} << 44);
  return Napi::Number::New(info.Env(), static_cast<double>(fma_work(flops)));
}

}  // namespace

void register_runtime(Napi::Env env, Napi::Object exports) {
  exports.Set("capabilities", Napi::Function::New(env, Capabilities, "capabilities"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("setSimd", Napi::Function::New(env, SetSimd, "setSimd"));
  exports.Set("rngFill", Napi::Function::New(env, RngFill, "rngFill"));
  exports.Set("rngDerive", Napi::Function::New(env, RngDerive, "rngDerive"));
  exports.Set("rngAlgorithmVersion", Napi::Number::New(env, rng::kAlgorithmVersion));
  exports.Set("crc32c", Napi::Function::New(env, Crc32c, "crc32c"));
  exports.Set("copyBytes", Napi::Function::New(env, CopyBytes, "copyBytes"));
  exports.Set("readBytes", Napi::Function::New(env, ReadBytes, "readBytes"));
  exports.Set("fmaWork", Napi::Function::New(env, FmaWork, "fmaWork"));
}

}  // namespace tessera::napi
