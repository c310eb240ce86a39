#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tessera/runtime.h"
#include "test_util.h"

using namespace tessera;

TEST_CASE("simd level names round-trip and dispatch can be lowered, not raised past the CPU") {
  test::RuntimeGuard guard;
  for (SimdLevel l : {SimdLevel::scalar, SimdLevel::neon, SimdLevel::avx2, SimdLevel::avx512,
                      SimdLevel::avx512_vpopcntdq}) {
    SimdLevel parsed;
    REQUIRE(parse_simd_level(simd_level_name(l), &parsed));
    CHECK(parsed == l);
    if (simd_level_available(l)) {
      CHECK(set_simd_level(l) == Status::ok);
      CHECK(active_simd_level() == l);
    } else {
      CHECK(set_simd_level(l) == Status::unsupported);
    }
  }
  SimdLevel parsed;
  CHECK_FALSE(parse_simd_level("avx3", &parsed));
  CHECK(simd_level_available(SimdLevel::scalar));
  CHECK(simd_level_available(detected_simd_level()));
}

TEST_CASE("thread count bounds") {
  test::RuntimeGuard guard;
  CHECK(set_thread_count(0) == Status::invalid_argument);
  CHECK(set_thread_count(kMaxThreads + 1) == Status::invalid_argument);
  CHECK(set_thread_count(3) == Status::ok);
  CHECK(thread_count() == 3);
}

TEST_CASE("parallel_for visits every index exactly once, in chunks fixed by n and grain") {
  test::RuntimeGuard guard;
  for (std::size_t threads : {1, 2, 3, 8, 33}) {
    REQUIRE(set_thread_count(threads) == Status::ok);
    for (std::size_t n : {0, 1, 2, 7, 64, 1000, 4097}) {
      for (std::size_t grain : {0, 1, 3, 64, 5000}) {
        std::vector<std::atomic<int>> hits(n);
        std::vector<std::pair<std::size_t, std::size_t>> chunks(n + 1, {SIZE_MAX, SIZE_MAX});
        auto body = [&](std::size_t b, std::size_t e) {
          CHECK(b < e);
          const std::size_t g = grain == 0 ? 1 : grain;
          CHECK(b % g == 0);  // chunks start on multiples of grain, whatever the thread count
          CHECK(e == std::min(n, b + g));
          for (std::size_t i = b; i < e; ++i) hits[i].fetch_add(1);
        };
        REQUIRE(parallel_for(n, grain, body) == Status::ok);
        for (std::size_t i = 0; i < n; ++i) CHECK(hits[i].load() == 1);
      }
    }
  }
}

TEST_CASE("parallel_for nested inside a job and from many threads at once finishes") {
  test::RuntimeGuard guard;
  REQUIRE(set_thread_count(3) == Status::ok);
  std::atomic<long> total{0};
  auto outer = [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      auto inner = [&](std::size_t ib, std::size_t ie) { total.fetch_add(static_cast<long>(ie - ib)); };
      CHECK(parallel_for(100, 7, inner) == Status::ok);
    }
  };
  std::vector<std::thread> callers;
  for (int t = 0; t < 6; ++t) callers.emplace_back([&] { CHECK(parallel_for(20, 1, outer) == Status::ok); });
  for (auto& t : callers) t.join();
  CHECK(total.load() == 6 * 20 * 100);
}

TEST_CASE("parallel_for reports a throwing body instead of crashing") {
  test::RuntimeGuard guard;
  REQUIRE(set_thread_count(2) == Status::ok);
  std::atomic<int> ran{0};
  auto body = [&](std::size_t b, std::size_t) {
    ran.fetch_add(1);
    if (b == 5) throw std::runtime_error("boom");
  };
  CHECK(parallel_for(10, 1, body) == Status::internal);
  CHECK(ran.load() == 10);  // the other chunks still ran
  auto single = [&](std::size_t, std::size_t) { throw std::runtime_error("boom"); };
  CHECK(parallel_for(3, 10, single) == Status::internal);
}

TEST_CASE("the pool can shrink and grow while in use") {
  test::RuntimeGuard guard;
  std::atomic<long> total{0};
  for (std::size_t threads : {4, 1, 6, 2, 3}) {
    REQUIRE(set_thread_count(threads) == Status::ok);
    auto body = [&](std::size_t b, std::size_t e) { total.fetch_add(static_cast<long>(e - b)); };
    REQUIRE(parallel_for(10000, 10, body) == Status::ok);
  }
  CHECK(total.load() == 5 * 10000);
}

TEST_CASE("grain_for_bytes") {
  CHECK(grain_for_bytes(0) == std::size_t{1} << 16);
  CHECK(grain_for_bytes(1 << 20) == 1);
  CHECK(grain_for_bytes(64, 1024) == 16);
}

TEST_CASE("parallel_for slots stay below max_slots and are unique per participant") {
  test::RuntimeGuard guard;
  for (std::size_t threads : {1, 2, 4, 9}) {
    REQUIRE(set_thread_count(threads) == Status::ok);
    for (std::size_t max_slots : {1, 2, 3, 64}) {
      std::vector<std::atomic<int>> used(max_slots);
      std::atomic<long> items{0};
      auto body = [&](std::size_t b, std::size_t e, std::size_t slot) {
        REQUIRE(slot < max_slots);
        used[slot].fetch_add(1);
        items.fetch_add(static_cast<long>(e - b));
      };
      REQUIRE(parallel_for(5000, 10, body, max_slots) == Status::ok);
      CHECK(items.load() == 5000);
      std::size_t distinct = 0;
      for (auto& u : used) distinct += u.load() > 0;
      CHECK(distinct <= std::min(threads, max_slots));
    }
  }
  CHECK(slots_for(0, 10) == 1);
  CHECK(slots_for(5, 10) == 1);
}
