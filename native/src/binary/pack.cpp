// Sign packing: bit i of a row is x[i] > threshold.
#include <cstring>
#include <limits>

#include "tessera/binary.h"
#include "tessera/runtime.h"

namespace tessera::binary {
namespace {

// One byte from 8 consecutive values; bit j (counted from the byte's first value) lands at 7 - j for msb, j for lsb.
inline std::uint8_t pack8(const float* x, float threshold, BitOrder order) {
  unsigned b = 0;
  if (order == BitOrder::msb) {
    for (int j = 0; j < 8; ++j) b |= static_cast<unsigned>(x[j] > threshold) << (7 - j);
  } else {
    for (int j = 0; j < 8; ++j) b |= static_cast<unsigned>(x[j] > threshold) << j;
  }
  return static_cast<std::uint8_t>(b);
}

void pack_row(const float* x, std::size_t dim, float threshold, BitOrder order, std::uint8_t* out) {
  const std::size_t full = dim / 8;
  for (std::size_t b = 0; b < full; ++b) out[b] = pack8(x + 8 * b, threshold, order);
  if (const std::size_t r = dim % 8) {
    float last[8];
    for (std::size_t j = 0; j < 8; ++j) last[j] = j < r ? x[8 * full + j] : -std::numeric_limits<float>::infinity();
    out[full] = pack8(last, threshold, order) & last_byte_mask(dim, order);  // NaN threshold: keep padding zero
  }
}

bool rows_fit(std::size_t rows, std::size_t per_row_bytes) {
  return per_row_bytes == 0 || rows <= std::numeric_limits<std::size_t>::max() / per_row_bytes;
}

}  // namespace

Status pack_signs(const float* x, std::size_t rows, std::size_t dim, float threshold, BitOrder order,
                  std::uint8_t* out) noexcept {
  if (dim == 0 || !rows_fit(rows, dim * sizeof(float))) return Status::invalid_argument;
  if (rows == 0) return Status::ok;
  if (x == nullptr || out == nullptr) return Status::invalid_argument;
  const std::size_t bytes = code_bytes(dim);
  auto body = [&](std::size_t begin, std::size_t end) {
    for (std::size_t r = begin; r < end; ++r) pack_row(x + r * dim, dim, threshold, order, out + r * bytes);
  };
  return parallel_for(rows, grain_for_bytes(dim * sizeof(float)), body);
}

Status unpack_signs(const std::uint8_t* codes, std::size_t rows, std::size_t dim, BitOrder order,
                    float* out) noexcept {
  if (dim == 0 || !rows_fit(rows, dim * sizeof(float))) return Status::invalid_argument;
  if (rows == 0) return Status::ok;
  if (codes == nullptr || out == nullptr) return Status::invalid_argument;
  const std::size_t bytes = code_bytes(dim);
  auto body = [&](std::size_t begin, std::size_t end) {
    for (std::size_t r = begin; r < end; ++r) {
      const std::uint8_t* c = codes + r * bytes;
      float* y = out + r * dim;
      for (std::size_t i = 0; i < dim; ++i) {
        const unsigned shift = order == BitOrder::msb ? 7 - (i % 8) : i % 8;
        y[i] = ((c[i / 8] >> shift) & 1u) ? 1.0f : -1.0f;
      }
    }
  };
  return parallel_for(rows, grain_for_bytes(dim * sizeof(float)), body);
}

}  // namespace tessera::binary
