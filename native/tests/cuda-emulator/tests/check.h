// What the emulated-kernel test programs share: the command line, the verdict of each case (emulator errors during
// a case fail it), notes, leak checks and the one-line summary that run.sh collects.
#pragma once

#include <cuda_runtime.h>  // the emulator's: its counters and settings

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

namespace check {

inline std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string format(const char* fmt, ...) {
  char buffer[1024];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buffer, sizeof buffer, fmt, args);
  va_end(args);
  return buffer;
}

// Usage: NAME_test [-v] [FILTER]: runs the cases whose names contain FILTER (every case without one); -v prints
// each case's verdict and time, not only failures and notes.
class Run {
 public:
  Run(const char* kernel_file, int argc, char** argv)
      : kernel_file_(kernel_file), start_(std::chrono::steady_clock::now()) {
    for (int i = 1; i < argc; ++i) {
      if (std::strcmp(argv[i], "-v") == 0)
        verbose_ = true;
      else
        filter_ = argv[i];
    }
  }

  bool selected(const std::string& name) const { return name.find(filter_) != std::string::npos; }

  // A case passes when ok and the emulator reported nothing since the previous case.
  void record(const std::string& name, bool ok, const std::string& detail = {}) {
    const long errors = new_errors();
    const bool passed = ok && errors == 0;
    ++cases_;
    if (!passed) {
      ++failed_;
      lap();
      std::printf("FAIL %s: %s%s\n", name.c_str(), detail.c_str(),
                  errors ? format(" (%ld emulator errors)", errors).c_str() : "");
    } else if (verbose_) {
      std::printf("ok   %s%s%s  [%.2f s]\n", name.c_str(), detail.empty() ? "" : ": ", detail.c_str(), lap());
    }
    std::fflush(stdout);
  }

  // A documented difference from the CPU, not a failure.
  void note(const std::string& name, const std::string& detail) {
    ++notes_;
    std::printf("NOTE %s: %s\n", name.c_str(), detail.c_str());
  }

  // Every device object is gone by now: anything left is a leak. Prints the summary; returns the exit status.
  int finish() {
    record("no device memory, streams or events left", emu::leaks().empty(), emu::leaks());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::printf("%s %s: %d cases, %d failed, %d notes; %ld launches, %ld blocks; %.1f s\n", failed_ ? "FAIL" : "PASS",
                kernel_file_, cases_, failed_, notes_, emu::counters().launches.load(), emu::counters().blocks.load(),
                seconds);
    return failed_ ? 1 : 0;
  }

 private:
  // Errors the emulator reported since the previous case.
  long new_errors() {
    const long errors = emu::counters().errors.load();
    return errors - std::exchange(errors_seen_, errors);
  }

  // Seconds since the previous case.
  double lap() {
    const auto now = std::chrono::steady_clock::now();
    return std::chrono::duration<double>(now - std::exchange(last_, now)).count();
  }

  const char* kernel_file_;
  std::chrono::steady_clock::time_point start_, last_ = start_;
  std::string filter_;
  bool verbose_ = false;
  int cases_ = 0, failed_ = 0, notes_ = 0;
  long errors_seen_ = 0;
};

// An emulator tunable changed for a scope (a small chunk budget, say, so that small inputs go in many chunks).
class Tunable {
 public:
  Tunable(const char* name, std::size_t value) : name_(name), previous_(emu::set_tunable(name, value)) {}
  ~Tunable() { emu::set_tunable(name_, previous_); }
  Tunable(const Tunable&) = delete;
  Tunable& operator=(const Tunable&) = delete;

 private:
  const char* name_;
  std::size_t previous_;
};

inline std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

}  // namespace check
