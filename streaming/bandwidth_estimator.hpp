#pragma once
// Bandwidth estimation after Google Congestion Control (draft-ietf-rmcat-gcc-02).
//
// Receiver side (DelayBasedEstimator): per frame (a group of fragments sent together), the inter-group delay
// variation d = (arrival gap) - (send gap); its accumulation, smoothed, gives a trendline whose slope over
// the last 20 groups is the queueing-delay growth. The slope (scaled by min(groups, 60) x 4) is compared
// with an adaptive threshold gamma (K_u 0.01, K_d 0.00018, start 12.5 ms, clamped 6-600 ms): above gamma for
// 10 ms is overuse, below -gamma underuse. The rate controller then decreases to 0.85 x the received rate on
// overuse, holds on underuse, and otherwise increases by at most 8 %/s.
//
// Sender side (LossBasedController): from the loss fraction p measured over windows of at least 500 ms
// (reports come every 50 ms; reacting to each would compound), +5 % (or up to the delay-based estimate) when
// p < 2 % (back to the delay-based estimate at once after a loss burst, never above it), x (1 - 0.5 p) when
// p > 10 %; the target is min(loss-based, receiver's delay-based estimate), clamped. Heavy loss where the
// link shows a bottleneck also leaves a ceiling at 0.85 x the rate the receiver got meanwhile, which the
// return to the delay-based estimate respects while it rises 5 % a window up to that rate and 25 % past it:
// behind a full drop-tail bottleneck the delay no longer grows (the trendline sees nothing and the estimate
// stays where it filled the queue), so returning to it at once refilled the queue one window after it had
// drained (two sessions through 6 Mbit/s lost 2 % of their frames and waited 120 ms in the queue).
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace kairo {

class DelayBasedEstimator {
 public:
  explicit DelayBasedEstimator(int64_t initial_bps) : estimate_bps_(double(initial_bps)) {}
  // One complete group: sender's send time of its last fragment, our arrival time of it, and its bytes.
  void on_group(int64_t send_ns, int64_t arrival_ns, size_t bytes);
  int64_t estimate_bps() const { return int64_t(estimate_bps_); }
  int64_t received_bps() const { return int64_t(received_bps_); }
  double trend_ms_per_s() const { return trend_; }
  enum class Signal { kNormal, kOveruse, kUnderuse };
  Signal signal() const { return signal_; }

 private:
  void update_rate(int64_t now_ns);

  bool first_ = true;
  int64_t prev_send_ns_ = 0, prev_arrival_ns_ = 0, first_arrival_ns_ = 0;
  double accumulated_ms_ = 0, smoothed_ms_ = 0;
  std::array<std::pair<double, double>, 20> window_{};  // (arrival ms, smoothed delay ms)
  size_t groups_ = 0;
  double trend_ = 0, threshold_ms_ = 12.5;
  int64_t overuse_since_ns_ = -1, last_threshold_update_ns_ = 0, last_rate_update_ns_ = 0;
  Signal signal_ = Signal::kNormal;
  double estimate_bps_;
  // Received rate over a sliding 500 ms window.
  std::array<std::pair<int64_t, size_t>, 256> arrivals_{};
  size_t arrival_count_ = 0;
  double received_bps_ = 0;
};

class LossBasedController {
 public:
  LossBasedController(int64_t initial_bps, int64_t min_bps, int64_t max_bps)
      : rate_bps_(double(initial_bps)), min_bps_(min_bps), max_bps_(max_bps) {}
  // A receiver report: fragments received and expected over its interval, and the receiver's delay-based
  // estimate (0 = none).
  // received_bps: the receiver's wire rate now (0: not measured); link_limited: its packet trains show a
  // bottleneck (streaming/link_capacity.hpp).
  void on_report(uint64_t received, uint64_t expected, int64_t delay_based_bps, int64_t now_ns,
                 int64_t received_bps = 0, bool link_limited = false);
  int64_t target_bps() const { return target_bps_; }

 private:
  double rate_bps_;
  int64_t min_bps_, max_bps_;
  int64_t target_bps_ = 0;
  int64_t window_start_ns_ = -1;
  uint64_t window_received_ = 0, window_expected_ = 0;
  int64_t received_bps_ = 0;
  bool window_link_limited_ = false;
  double ceiling_bps_ = 0;   // after heavy loss (0: none)
  double overflow_bps_ = 0;  // what the receiver got when it last came
};

}  // namespace kairo
