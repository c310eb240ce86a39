// The addon's entry point: one flat list of modules, each adding its functions.
#include "addon.h"

#ifndef TESSERA_VERSION
#error "TESSERA_VERSION must be defined by the build (package.json's version)"
#endif

namespace tessera::napi {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::String::New(env, TESSERA_VERSION));
  register_runtime(env, exports);
  register_vectors(env, exports);
  register_binary(env, exports);
  register_fde(env, exports);
  register_rope(env, exports);
  register_attention(env, exports);
  register_kv_cache(env, exports);
  register_pooling(env, exports);
  register_approx_attention(env, exports);
  register_embed(env, exports);
#ifdef TESSERA_WITH_CUDA
  register_cuda(env, exports);
  register_cuda_attention(env, exports);
#endif
  return exports;
}

}  // namespace tessera::napi

// The macro pastes its argument into an identifier, so it needs an unqualified name.
static Napi::Object InitTessera(Napi::Env env, Napi::Object exports) { return tessera::napi::Init(env, exports); }
NODE_API_MODULE(tessera, InitTessera)
