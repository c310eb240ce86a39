#include "tessera/status.h"

namespace tessera {

const char* status_name(Status s) noexcept {
  switch (s) {
    case Status::ok: return "ok";
    case Status::invalid_argument: return "invalid argument";
    case Status::unsupported: return "unsupported";
    case Status::out_of_memory: return "out of memory";
    case Status::internal: return "internal error";
  }
  return "unknown status";
}

}  // namespace tessera
