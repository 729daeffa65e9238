#include "client/presentation.hpp"

#include <algorithm>
#include <utility>

namespace kairo {

void ReferenceChain::break_at(uint64_t first_bad, std::string reason) {
  if (!broken_) {
    ++breaks_;
    first_broken_ = first_bad;
  }
  broken_ = true;
  reason_ = std::move(reason);
}

ReferenceChain::Verdict ReferenceChain::on_frame(uint64_t frame_id, bool keyframe, bool decoded,
                                                 std::optional<uint64_t> repairs_from,
                                                 std::optional<uint64_t> refreshed_from) {
  const bool gap = next_id_ && frame_id != *next_id_;
  // Frames before the first one seen never arrived (they matter to a refresh wave that began before it).
  if (!next_id_ && frame_id > 0) last_bad_ = frame_id - 1;
  const uint64_t expected = next_id_.value_or(0);
  next_id_ = frame_id + 1;
  if (gap) last_bad_ = frame_id > expected ? frame_id - 1 : std::max(last_bad_.value_or(0), expected - 1);
  if (!decoded) {
    last_bad_ = frame_id;
    break_at(frame_id, "frame " + std::to_string(frame_id) + " did not decode");
    return Verdict::kBroken;
  }
  if (keyframe) {
    broken_ = false;
    seen_keyframe_ = true;
    reason_.clear();
    return Verdict::kShow;
  }
  if (gap)
    break_at(frame_id > expected ? expected : frame_id,
             frame_id > expected
                 ? "frame " + std::to_string(expected) +
                       (frame_id - expected > 1 ? "-" + std::to_string(frame_id - 1) : "") + " never arrived"
                 : "frames out of order at " + std::to_string(frame_id));
  // A repair predicts only from frames before `repairs_from`: all decoded before the break if it is at or
  // before the break's first frame. (Before the first keyframe there is nothing to predict from.)
  // A wave's end depends only on the frames since the wave began: all decoded if the last bad one came
  // before it. It needs no keyframe before it (a wave's first frame carries the stream's headers): a
  // client that lost the first keyframe starts from a wave.
  const bool refreshed = refreshed_from && (!last_bad_ || *refreshed_from > *last_bad_);
  if (broken_ && ((seen_keyframe_ && repairs_from && *repairs_from <= first_broken_) || refreshed)) {
    broken_ = false;
    reason_.clear();
    ++repairs_;
    return Verdict::kShow;
  }
  if (broken_) {
    ++refused_;
    return Verdict::kBroken;
  }
  return Verdict::kShow;
}

DisplayClock::DisplayClock(int64_t period_ns, int64_t offset_ns)
    : period_ns_(std::max<int64_t>(1, period_ns)), offset_ns_(offset_ns) {}

void DisplayClock::on_frame_ready(int64_t ready_ns) {
  if (!next_slot_ns_) {
    // The display starts with the first frame: its slot begins `offset_ns` later.
    next_slot_ns_ = ready_ns + offset_ns_;
  }
  advance(ready_ns);
  ++ready_since_slot_;
  margins_[margin_count_++ % margins_.size()] = *next_slot_ns_ - ready_ns;
}

int64_t DisplayClock::phase_error_ns() const {
  const size_t n = std::min(margin_count_, margins_.size());
  if (n < 8) return 0;
  std::array<int64_t, 16> sorted = margins_;
  std::sort(sorted.begin(), sorted.begin() + ptrdiff_t(n));
  const int64_t median = sorted[n / 2];
  // How much earlier than the median the early frames come: twice the distance to the upper quartile (about
  // the 90th percentile of a bell; robust to the three outliers a frame that missed its slot, read as early
  // for the next one, can be).
  const int64_t early_spread = 2 * (sorted[n * 3 / 4] - median);
  return median - target_margin_ns(early_spread);
}

int64_t DisplayClock::target_margin_ns(int64_t early_spread_ns) const {
  // The earliest frames 3 ms after the previous slot began, and the median at least 12 ms: the rest of the
  // slot is the late side's, where the tail is (a lost pose, a render or a decode slowed by the machine).
  // Never less than half the slot. (1 and 3 ms: frames moved across the previous slot's end and merged
  // with their predecessors, up to 48 held slots in 590, for the render clock's dead band is 2 ms and its
  // steps lag a report; 8 ms: 14-31 held slots in 590 without loss, 2x256^2 at 30 fps, 20 ms each way;
  // 12 ms: 0-1, and at 5 % loss in bursts of 4 no more held than with 8.)
  constexpr int64_t kGuardNs = 3'000'000, kLeastEarlyNs = 12'000'000;
  return std::clamp(period_ns_ - kGuardNs - early_spread_ns, period_ns_ / 2, period_ns_ - kLeastEarlyNs);
}

void DisplayClock::advance(int64_t now_ns) {
  if (!next_slot_ns_) return;
  while (*next_slot_ns_ <= now_ns) {
    close_slot(ready_since_slot_ > 0);
    ready_since_slot_ = 0;
    *next_slot_ns_ += period_ns_;
  }
}

void DisplayClock::close_slot(bool new_frame) {
  ++totals_.slots;
  const double period_ms = double(period_ns_) * 1e-6;
  if (new_frame) {
    ++totals_.slots_new_frame;
    held_run_ = 0;
    return;
  }
  ++totals_.slots_held;
  ++held_run_;
  totals_.frozen_ms_total += period_ms;
  totals_.frozen_ms_longest = std::max(totals_.frozen_ms_longest, double(held_run_) * period_ms);
}

}  // namespace kairo
