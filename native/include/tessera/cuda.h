// The CUDA backend's device queries. Only the CUDA addon links this; the CPU addon never sees CUDA.
#pragma once

#include <string>

namespace tessera::cuda {

struct DeviceReport {
  int device_count = 0;
  bool usable = false;      // a probe kernel ran on device 0 and wrote what it should
  std::string name;         // device 0
  int compute_major = 0, compute_minor = 0;
  std::size_t memory_bytes = 0;
  int driver_version = 0, runtime_version = 0;  // 13000 = CUDA 13.0
  std::string error;        // why the device is not usable, when it is not
};

// Asks the driver for devices and runs a tiny kernel on device 0, so "usable" means code built into this addon
// actually runs there (a driver too old, or no compatible architecture, fail here instead of in a real kernel).
DeviceReport probe_devices() noexcept;

}  // namespace tessera::cuda
