#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "tessera/checksum.h"
#include "tessera/rng.h"
#include "test_util.h"

using namespace tessera;

namespace {
// Bit-at-a-time CRC-32C: the definition, independent of both fast paths.
std::uint32_t crc32c_bitwise(const unsigned char* p, std::size_t n) {
  std::uint32_t c = ~0u;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}
}  // namespace

TEST_CASE("CRC-32C check value and known vectors") {
  test::RuntimeGuard guard;
  for (SimdLevel level : test::levels()) {
    REQUIRE(set_simd_level(level) == Status::ok);
    CHECK(crc32c("123456789", 9) == 0xE3069283u);  // the catalogue's check value
    CHECK(crc32c("", 0) == 0u);
    std::vector<unsigned char> zeros(32, 0);
    CHECK(crc32c(zeros.data(), 32) == 0x8A9136AAu);  // RFC 3720 (iSCSI), B.4: 32 bytes of zeros
    std::vector<unsigned char> ones(32, 0xFF);
    CHECK(crc32c(ones.data(), 32) == 0x62A8AB43u);  // RFC 3720, B.4: 32 bytes of 0xFF
  }
}

TEST_CASE("CRC-32C fast paths equal the bitwise definition at every length and alignment, and continue") {
  test::RuntimeGuard guard;
  std::vector<std::uint64_t> words(80);
  rng::fill_u64(99, 0, words.data(), words.size());
  const auto* bytes = reinterpret_cast<const unsigned char*>(words.data());
  for (SimdLevel level : test::levels()) {
    REQUIRE(set_simd_level(level) == Status::ok);
    for (std::size_t start = 0; start < 8; ++start) {
      for (std::size_t n = 0; n < 300; ++n) {
        const std::uint32_t want = crc32c_bitwise(bytes + start, n);
        CHECK(crc32c(bytes + start, n) == want);
        const std::size_t cut = n / 3;
        CHECK(crc32c(bytes + start + cut, n - cut, crc32c(bytes + start, cut)) == want);
      }
    }
  }
}
