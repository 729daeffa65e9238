#pragma once
// How the client -> server direction loses datagrams, seen by the server from the sequence numbers every
// authenticated datagram carries (wire::Header::sequence, strictly increasing per direction), and what the
// client does about it for its poses.
//
// Why: a pose datagram carries the newest few samples, so a lost datagram costs no sample, but during a burst
// of consecutive losses nothing arrives at all and the node renders an ever older pose. Loss that comes in
// bursts of datagrams (Wi-Fi retries giving up, a queue overflowing) is shortened in time by sending more
// datagrams: the client sends its poses in up to four datagrams per display interval, as many as the loss
// and burst length the server reports need for the newest pose to be at most two display intervals old in
// 99 % of frames. Hand-written: no library measures this for a custom datagram protocol. Pure logic, no
// clock.
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace kairo {

class UplinkLossMeter {
 public:
  // Each authenticated datagram's sequence number, in arrival order.
  void on_sequence(uint64_t sequence) {
    if (highest_ == 0) {
      highest_ = sequence;
      return;
    }
    if (sequence > highest_) {
      const uint64_t gap = sequence - highest_ - 1;
      expected_ += gap + 1;
      ++received_;
      if (gap > 0) {
        lost_ += gap;
        ++bursts_;
      }
      highest_ = sequence;
    } else if (lost_ > 0) {
      // Reordered: one counted lost arrived after all (the replay window has already refused duplicates).
      --lost_;
      ++received_;
    }
    if (expected_ >= kWindow) close_window();
  }

  // Whether a window has been counted yet: until then the loss is unknown (and the client assumes the worst).
  bool measured() const { return measured_; }
  // Fraction of datagrams lost: the worst recent window, decaying by a tenth a window (bursty loss comes and
  // goes; the poses should stay protected between its episodes).
  double loss() const { return loss_; }
  // Mean length of a loss run, in datagrams (1: isolated losses), over the recent windows (a window alone
  // holds too few runs to say).
  double burst_mean() const { return runs_ > 0 ? std::max(1.0, lost_in_runs_ / runs_) : 1.0; }

  static constexpr uint64_t kWindow = 200;  // about a second of poses, reports and NACKs

 private:
  void close_window() {
    const double window_loss = double(lost_) / double(expected_);
    loss_ = std::max(window_loss, 0.9 * loss_ + 0.1 * window_loss);
    lost_in_runs_ = 0.9 * lost_in_runs_ + double(lost_);
    runs_ = 0.9 * runs_ + double(bursts_);
    measured_ = true;
    expected_ = received_ = lost_ = bursts_ = 0;
  }

  uint64_t highest_ = 0, expected_ = 0, received_ = 0, lost_ = 0, bursts_ = 0;
  double loss_ = 0, lost_in_runs_ = 0, runs_ = 0;
  bool measured_ = false;
};

// Datagrams per display interval (1 to kMaxPoseDatagrams) for poses under the uplink's loss: the fewest for
// which the newest pose is more than two intervals old with probability <= `risk`. With k datagrams an
// interval, that takes 2k consecutive losses (the risk is half the 1 % allowed: the loss and burst length
// are estimates): one (probability `loss`) continued 2k - 1 times, each with the
// probability a burst of mean length b goes on, 1 - 1/b (the Gilbert-Elliott model netsim impairs with).
// Examples: no loss -> 1; 1 % isolated -> 1; 5 % in bursts of 4 -> 4.
constexpr int kMaxPoseDatagrams = 4;
inline int pose_datagrams_per_interval(double loss, double burst_mean, double risk = 0.005) {
  const double go_on = 1.0 - 1.0 / std::max(1.0, burst_mean);
  for (int k = 1; k < kMaxPoseDatagrams; ++k)
    if (loss * std::pow(go_on, 2 * k - 1) <= risk) return k;
  return kMaxPoseDatagrams;
}

}  // namespace kairo
