#pragma once
// Predicts the head pose at the client's display time from the recent pose samples (client clock): a
// least-squares linear fit of position and of orientation (as rotation vectors relative to the newest
// sample) over the last 30 ms, extrapolated at most 80 ms (WiVRn's window and cap; beyond that the
// extrapolation error of real head motion outgrows the latency it hides). Fixed history, no allocation.
#include <array>
#include <cstdint>

#include "core/pose.hpp"

namespace kairo {

class PosePredictor {
 public:
  static constexpr int64_t kWindowNs = 30'000'000;
  static constexpr int64_t kMaxHorizonNs = 80'000'000;

  // Samples must come in time order; older or duplicate ones are ignored.
  void add(int64_t time_ns, const Pose& pose);
  bool empty() const { return count_ == 0; }
  int64_t newest_time_ns() const;
  const Pose& newest() const;
  // The pose at `time_ns` (clamped to newest + kMaxHorizonNs; never before the newest sample).
  Pose predict(int64_t time_ns) const;

 private:
  struct Sample {
    int64_t time_ns = 0;
    Pose pose;
  };
  std::array<Sample, 32> ring_{};
  size_t next_ = 0, count_ = 0;
};

}  // namespace kairo
