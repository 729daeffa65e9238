#pragma once
// How fast a frame may leave: at the rate the link has shown it carries, not spread over the frame interval.
// The client watches each frame's fragments as a packet train (sent back to back by the pacer, or nearly):
// when they arrive more spread out than they were sent, the link's bottleneck spaced them, and the train's
// bytes over its arrival span measure that bottleneck (packet-train dispersion, as in Pathrate or the "max
// bandwidth" of BBR's delivery rate). When they arrive as they were sent, the link carries at least the
// sending rate: a lower bound, and a disproof of any slower limit read before it. A train spread by a
// stall of the receiving machine (a relay's thread, a softirq under load) reads slower than the link is: a
// spread train counts as a limit only if no later train kept up at a higher rate, and, when an earlier one
// did (the link was faster a moment ago), only if a second spread train confirms it: a new bottleneck spreads
// every train sent above it, a stall one. Before, the median of the spread trains alone decided, and one
// stall among eight trains set the pacing back to 2.5 x the target. The server paces a frame at 0.9 x the
// reported capacity; while none is reported it raises its pacing rate step by step from 2.5 x the video
// target (libwebrtc's pacing factor) until the link shows a limit, so that on a fast link a frame leaves in
// about a millisecond. Hand-written: no library in Debian estimates capacity from packet trains. Pure logic,
// no clock.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

namespace kairo {

class TrainDispersion {
 public:
  // Every first transmission of a video fragment (retransmissions are not part of the train): its frame, when
  // the server sent it (server clock) and when it arrived (client clock), and its size on the wire.
  void on_fragment(uint64_t frame_id, int64_t send_ns, int64_t arrival_ns, size_t bytes) {
    if (count_ > 0 && frame_id != frame_id_) close_train();
    if (count_ == 0 || frame_id != frame_id_) {
      frame_id_ = frame_id;
      count_ = 0;
      bytes_ = 0;
      first_send_ = last_send_ = send_ns;
      first_arrival_ = last_arrival_ = arrival_ns;
    }
    ++count_;
    bytes_ += bytes;
    first_send_ = std::min(first_send_, send_ns);
    last_send_ = std::max(last_send_, send_ns);
    first_arrival_ = std::min(first_arrival_, arrival_ns);
    last_arrival_ = std::max(last_arrival_, arrival_ns);
  }
  // The bottleneck the recent trains showed (bit/s): the median of the spread trains among the last kWindow
  // that stand as limits (above); 0 when none does (the link kept up with the sender).
  uint64_t capacity_bps() const {
    const size_t n = std::min(trains_, kWindow);
    std::array<uint64_t, kWindow> limits{};
    size_t valid = 0;
    uint64_t fastest_kept_up_after = 0;  // of the trains newer than the one looked at
    bool outran_before_first = false;
    for (size_t age = 0; age < n; ++age) {  // newest first
      const Sample& sample = samples_[(trains_ - 1 - age) % kWindow];
      if (!sample.dispersed) {
        fastest_kept_up_after = std::max(fastest_kept_up_after, sample.bps);
      } else if (sample.bps >= fastest_kept_up_after) {
        limits[valid++] = sample.bps;
      }
    }
    if (valid == 0) return 0;
    if (valid == 1) {  // unconfirmed: a limit only if no train in the window kept up faster than it
      for (size_t i = 0; i < n; ++i)
        outran_before_first |= !samples_[i].dispersed && samples_[i].bps > limits[0];
      if (outran_before_first) return 0;
    }
    std::nth_element(limits.begin(), limits.begin() + ptrdiff_t(valid / 2),
                     limits.begin() + ptrdiff_t(valid));
    return limits[valid / 2];
  }
  static constexpr size_t kWindow = 8;
  static constexpr int kMinFragments = 4;  // shorter trains measure the receiver's timer, not the link

 private:
  void close_train() {
    if (count_ < kMinFragments) return;
    const int64_t send_span = last_send_ - first_send_, arrival_span = last_arrival_ - first_arrival_;
    // Spread by the link: more than a quarter beyond the sending span, and by more than scheduling noise.
    const bool dispersed = arrival_span > send_span + send_span / 4 + kNoiseNs;
    // The first fragment's bytes arrived at the start of the span: n - 1 fragments fill it.
    const double bits = 8.0 * double(bytes_) * double(count_ - 1) / double(count_);
    // A train that kept up shows at least its sending rate (arrival spans within the noise say no more);
    // one the link spread shows the link's.
    const int64_t span = std::max<int64_t>(dispersed ? arrival_span : send_span, 1'000);
    samples_[trains_ % kWindow] =
        Sample{.bps = uint64_t(bits / (double(span) * 1e-9)), .dispersed = dispersed};
    ++trains_;
  }
  struct Sample {
    uint64_t bps = 0;
    bool dispersed = false;
  };
  static constexpr int64_t kNoiseNs = 300'000;
  uint64_t frame_id_ = 0;
  int count_ = 0;
  size_t bytes_ = 0;
  int64_t first_send_ = 0, last_send_ = 0, first_arrival_ = 0, last_arrival_ = 0;
  std::array<Sample, kWindow> samples_{};
  size_t trains_ = 0;
};

class PacingRate {
 public:
  // The rate a frame's fragments leave at, for the current video target.
  double rate_bps(double target_bps) const {
    target_bps = std::max(target_bps, 100'000.0);
    const double probed = std::min(multiplier_ * target_bps, kMaxRateBps);
    if (capacity_bps_ <= 0) return probed;
    // A link with little headroom over the video (a shared or capped bottleneck) keeps libwebrtc's 2.5x:
    // bursts at the whole link's rate from several sessions overran its queue (the shared-link tests lost
    // twice the frames). Only with ample headroom does a frame leave at the link's rate.
    const double capacity = 0.9 * double(capacity_bps_);
    const double ceiling = capacity >= kAmpleHeadroom * target_bps ? probed : kStartMultiplier * target_bps;
    return std::max(std::min(capacity, ceiling), 1.1 * target_bps);
  }
  // A receiver report's capacity (0: the link kept up with every recent train).
  void on_report(uint64_t capacity_bps, double target_bps) {
    capacity_bps_ = capacity_bps;
    if (capacity_bps > 0) {
      // Probing resumes from here when the limit goes away.
      multiplier_ = std::clamp(0.9 * double(capacity_bps) / std::max(target_bps, 100'000.0), kStartMultiplier,
                               kMaxMultiplier);
    } else {
      multiplier_ = std::min(multiplier_ * kProbeStep, kMaxMultiplier);
    }
  }
  static constexpr double kStartMultiplier = 2.5, kProbeStep = 1.25, kMaxMultiplier = 10.0;
  static constexpr double kAmpleHeadroom = 8.0;  // link capacity over the video target
  static constexpr double kMaxRateBps = 2e9;

 private:
  uint64_t capacity_bps_ = 0;
  double multiplier_ = kStartMultiplier;
};

}  // namespace kairo
