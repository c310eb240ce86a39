// Each module's bindings register their functions on the addon's exports.
#pragma once

#include <napi.h>

#include <memory>

#include "tessera/fde.h"

namespace tessera::napi {

void register_runtime(Napi::Env env, Napi::Object exports);
void register_vectors(Napi::Env env, Napi::Object exports);
void register_binary(Napi::Env env, Napi::Object exports);
void register_fde(Napi::Env env, Napi::Object exports);
void register_rope(Napi::Env env, Napi::Object exports);
void register_attention(Napi::Env env, Napi::Object exports);
void register_kv_cache(Napi::Env env, Napi::Object exports);
void register_pooling(Napi::Env env, Napi::Object exports);
void register_approx_attention(Napi::Env env, Napi::Object exports);
void register_embed(Napi::Env env, Napi::Object exports);
// The encoder state behind an FdeEncoderHandle (type-checked by its tag; TypeError naming `name` otherwise).
std::shared_ptr<const fde::State> fde_encoder_state(const Napi::Value& handle, const char* name);

#ifdef TESSERA_WITH_CUDA
void register_cuda(Napi::Env env, Napi::Object exports);
void register_cuda_attention(Napi::Env env, Napi::Object exports);
#endif

}  // namespace tessera::napi
