// DeviceAttention: one stream and one set of buffers per object, calls serialized by a mutex, each call forwarded
// to its module's host code (rope/apply.cu, attention/flash.cu, attention/merge.cu).
#include <mutex>

#include "context.cuh"

namespace tessera::cuda {
namespace {

class DeviceAttentionImpl final : public DeviceAttention {
 public:
  Result init() { return context_.stream.create(); }

  Result apply_rope(void* data, rope::DType dtype, const rope::Shape& shape, rope::Style style,
                    const rope::Positions& positions, const rope::Angles& angles) noexcept override {
    return guarded([&] {
      std::lock_guard lock(mutex_);
      return detail::apply_rope(context_, data, dtype, shape, style, positions, angles);
    });
  }

  Result attend(const void* q, const void* k, const void* v, attention::DType dtype, const attention::Shape& shape,
                const attention::Options& options, void* out, float* lse) noexcept override {
    return guarded([&] {
      std::lock_guard lock(mutex_);
      return detail::attend(context_, q, k, v, dtype, shape, options, out, lse);
    });
  }

  Result merge_states(const float* out_a, const float* lse_a, const float* out_b, const float* lse_b,
                      const attention::MergeShape& shape, float* out, float* lse) noexcept override {
    return guarded([&] {
      std::lock_guard lock(mutex_);
      return detail::merge_states(context_, out_a, lse_a, out_b, lse_b, shape, out, lse);
    });
  }

  double last_kernel_ms() const noexcept override { return context_.last_ms; }

 private:
  std::mutex mutex_;
  detail::AttentionContext context_;
};

}  // namespace

Result DeviceAttention::create(std::unique_ptr<DeviceAttention>* out) noexcept {
  return guarded([&]() -> Result {
    if (!out) return {Status::invalid_argument, "no output"};
    auto attention = std::make_unique<DeviceAttentionImpl>();
    if (Result r = attention->init(); !r.ok()) return r;
    *out = std::move(attention);
    return {};
  });
}

}  // namespace tessera::cuda
