// Status codes returned by the core. The core never throws across its API and never touches Node:
// bindings translate a Status into the right JavaScript error class.
#pragma once

namespace tessera {

enum class Status {
  ok = 0,
  invalid_argument,  // a shape or value the caller should have checked (bindings map it to RangeError)
  unsupported,       // the CPU or build lacks what was asked for
  out_of_memory,
  internal,          // a bug in Tessera: please report
};

const char* status_name(Status s) noexcept;

}  // namespace tessera
