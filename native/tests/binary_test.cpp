#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "tessera/binary.h"
#include "tessera/rng.h"
#include "test_util.h"

using namespace tessera;
using binary::BitOrder;

namespace {

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(rng::u64(seed, i) >> 56);
  return v;
}

// The definition: count differing bits one at a time, over the first `bits` bits only.
std::uint32_t reference_distance(const std::uint8_t* a, const std::uint8_t* b, std::size_t bits, BitOrder order) {
  std::uint32_t d = 0;
  for (std::size_t i = 0; i < bits; ++i) {
    const unsigned shift = order == BitOrder::msb ? 7 - i % 8 : i % 8;
    d += ((a[i / 8] >> shift) & 1u) != ((b[i / 8] >> shift) & 1u);
  }
  return d;
}

}  // namespace

TEST_CASE("pack_signs and unpack_signs follow numpy.packbits (msb) and FAISS (lsb)") {
  const float x[10] = {1, -1, 0, 2, -3, 0.5f, -0.1f, 9, 4, -4};
  std::uint8_t msb[2] = {0xAA, 0xAA}, lsb[2] = {0xAA, 0xAA};
  REQUIRE(binary::pack_signs(x, 1, 10, 0.0f, BitOrder::msb, msb) == Status::ok);
  REQUIRE(binary::pack_signs(x, 1, 10, 0.0f, BitOrder::lsb, lsb) == Status::ok);
  CHECK(msb[0] == 0b10010101);  // x > 0 for elements 0, 3, 5, 7
  CHECK(msb[1] == 0b10000000);  // element 8; padding bits zero
  CHECK(lsb[0] == 0b10101001);
  CHECK(lsb[1] == 0b00000001);
  std::uint8_t t[2];
  REQUIRE(binary::pack_signs(x, 1, 10, 1.5f, BitOrder::msb, t) == Status::ok);
  CHECK(t[0] == 0b00010001);
  CHECK(t[1] == 0b10000000);
  float back[10];
  REQUIRE(binary::unpack_signs(msb, 1, 10, BitOrder::msb, back) == Status::ok);
  for (int i = 0; i < 10; ++i) CHECK(back[i] == (x[i] > 0 ? 1.0f : -1.0f));
  CHECK(binary::last_byte_mask(10, BitOrder::msb) == 0xC0);
  CHECK(binary::last_byte_mask(10, BitOrder::lsb) == 0x03);
  CHECK(binary::last_byte_mask(16, BitOrder::lsb) == 0xFF);
  CHECK(binary::pack_signs(x, 1, 0, 0.0f, BitOrder::msb, t) == Status::invalid_argument);
}

TEST_CASE("Hamming distances equal the bitwise definition on every path, length and padding") {
  test::RuntimeGuard guard;
  for (SimdLevel level : test::levels()) {
    REQUIRE(set_simd_level(level) == Status::ok);
    CAPTURE(simd_level_name(level));
    for (std::size_t bits : {1, 7, 8, 9, 63, 64, 65, 127, 128, 200, 256, 511, 512, 513, 1000, 1024, 1536, 1537, 2048,
                             4096, 4099}) {
      for (BitOrder order : {BitOrder::msb, BitOrder::lsb}) {
        const std::size_t bytes = binary::code_bytes(bits);
        // One to three queries take the direct path, more the transposed one; 37 codes end mid-block, 300 span
        // two code tiles.
        for (auto [nq, n] : {std::pair<std::size_t, std::size_t>{1, 37}, {3, 300}, {9, 37}, {17, 300}}) {
          const auto q = random_bytes(nq * bytes, bits * 3 + nq);  // padding bits are random: they must not count
          const auto c = random_bytes(n * bytes, bits * 3 + n);
          std::vector<std::uint32_t> d(nq * n, 0xDEADBEEF);
          REQUIRE(binary::hamming_distances(q.data(), nq, c.data(), n, bits, order, d.data()) == Status::ok);
          for (std::size_t i = 0; i < nq; ++i)
            for (std::size_t j = 0; j < n; ++j)
              REQUIRE(d[i * n + j] == reference_distance(&q[i * bytes], &c[j * bytes], bits, order));
        }
      }
    }
  }
}

TEST_CASE("Hamming top-k is the sorted (distance, index) prefix, for any thread count") {
  test::RuntimeGuard guard;
  const std::size_t bits = 70, bytes = binary::code_bytes(bits);
  for (std::size_t n : {0, 1, 5, 300, 5000}) {
    const std::size_t nq = n == 300 ? 2 : 70;  // 70 crosses a query block; 2 takes the direct path
    const auto q = random_bytes(nq * bytes, 100 + n);
    auto c = random_bytes(n * bytes, 200 + n);
    if (n > 10) std::copy_n(c.begin(), 3 * bytes, c.begin() + 7 * bytes);  // duplicate codes: exact ties
    for (std::size_t k : {1, 3, 10, 6000}) {
      const std::size_t kk = std::min(k, n);
      std::vector<std::int32_t> want_idx(nq * kk), want_dist(nq * kk);
      for (std::size_t i = 0; i < nq; ++i) {
        std::vector<std::pair<std::uint32_t, std::int32_t>> all;
        for (std::size_t j = 0; j < n; ++j)
          all.push_back({reference_distance(&q[i * bytes], &c[j * bytes], bits, BitOrder::msb), static_cast<std::int32_t>(j)});
        std::sort(all.begin(), all.end());
        for (std::size_t r = 0; r < kk; ++r) {
          want_dist[i * kk + r] = static_cast<std::int32_t>(all[r].first);
          want_idx[i * kk + r] = all[r].second;
        }
      }
      for (std::size_t threads : {1, 2, 7}) {
        REQUIRE(set_thread_count(threads) == Status::ok);
        for (SimdLevel level : test::levels()) {
          REQUIRE(set_simd_level(level) == Status::ok);
          std::vector<std::int32_t> idx(nq * kk, -7), dist(nq * kk, -7);
          binary::HammingQuery hq{q.data(), nq, c.data(), n, bits, BitOrder::msb, k};
          REQUIRE(binary::hamming_topk(hq, idx.data(), dist.data()) == Status::ok);
          CHECK(idx == want_idx);
          CHECK(dist == want_dist);
        }
      }
    }
  }
}

TEST_CASE("Hamming top-k breaks ties by the given ids and returns them") {
  const std::size_t bits = 16, n = 6;
  std::vector<std::uint8_t> codes(n * 2, 0);  // all identical: every distance ties
  const std::int32_t ids[n] = {50, 10, 40, 20, 60, 30};
  const std::uint8_t query[2] = {0, 0};
  std::int32_t keys[4], dist[4];
  binary::HammingQuery hq{query, 1, codes.data(), n, bits, BitOrder::msb, 4, ids};
  REQUIRE(binary::hamming_topk(hq, keys, dist) == Status::ok);
  CHECK(std::vector<std::int32_t>(keys, keys + 4) == std::vector<std::int32_t>{10, 20, 30, 40});
  CHECK(std::vector<std::int32_t>(dist, dist + 4) == std::vector<std::int32_t>{0, 0, 0, 0});
}

TEST_CASE("Hamming top-k rejects bad shapes") {
  std::uint8_t b[4] = {};
  std::int32_t o[4];
  binary::HammingQuery hq{b, 1, b, 1, 0, BitOrder::msb, 1};
  CHECK(binary::hamming_topk(hq, o, o) == Status::invalid_argument);
  hq.bits = 8;
  hq.k = 0;
  CHECK(binary::hamming_topk(hq, o, o) == Status::invalid_argument);
  hq.k = 1;
  hq.queries = nullptr;
  CHECK(binary::hamming_topk(hq, o, o) == Status::invalid_argument);
  hq.n = 0;  // nothing to do: no pointer is read
  CHECK(binary::hamming_topk(hq, o, o) == Status::ok);
}
