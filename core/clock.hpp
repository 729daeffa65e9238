#pragma once
// The one clock every latency in Kairo is measured with (per process): monotonic, nanoseconds.
#include <chrono>
#include <cstdint>

namespace kairo {

inline int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace kairo
