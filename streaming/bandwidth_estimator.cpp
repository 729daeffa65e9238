#include "streaming/bandwidth_estimator.hpp"

#include <algorithm>
#include <cmath>

namespace kairo {

void DelayBasedEstimator::on_group(int64_t send_ns, int64_t arrival_ns, size_t bytes) {
  arrivals_[arrival_count_++ % arrivals_.size()] = {arrival_ns, bytes};
  size_t window_bytes = 0;
  int64_t oldest = arrival_ns;
  for (size_t i = 0; i < std::min(arrival_count_, arrivals_.size()); ++i)
    if (arrival_ns - arrivals_[i].first <= 500'000'000) {
      window_bytes += arrivals_[i].second;
      oldest = std::min(oldest, arrivals_[i].first);
    }
  if (arrival_ns - oldest > 100'000'000)
    received_bps_ = double(window_bytes) * 8e9 / double(arrival_ns - oldest);

  if (first_) {
    first_ = false;
    prev_send_ns_ = send_ns;
    prev_arrival_ns_ = first_arrival_ns_ = arrival_ns;
    last_rate_update_ns_ = last_threshold_update_ns_ = arrival_ns;
    return;
  }
  const double d_ms = double((arrival_ns - prev_arrival_ns_) - (send_ns - prev_send_ns_)) * 1e-6;
  prev_send_ns_ = send_ns;
  prev_arrival_ns_ = arrival_ns;
  accumulated_ms_ += d_ms;
  smoothed_ms_ = 0.9 * smoothed_ms_ + 0.1 * accumulated_ms_;
  const double t_ms = double(arrival_ns - first_arrival_ns_) * 1e-6;
  window_[groups_ % window_.size()] = {t_ms, smoothed_ms_};
  ++groups_;
  const size_t n = std::min(groups_, window_.size());
  if (n >= 2) {
    double mean_t = 0, mean_d = 0;
    for (size_t i = 0; i < n; ++i) {
      mean_t += window_[i].first;
      mean_d += window_[i].second;
    }
    mean_t /= double(n);
    mean_d /= double(n);
    double num = 0, den = 0;
    for (size_t i = 0; i < n; ++i) {
      num += (window_[i].first - mean_t) * (window_[i].second - mean_d);
      den += (window_[i].first - mean_t) * (window_[i].first - mean_t);
    }
    trend_ = den > 0 ? num / den : 0.0;  // ms of delay per ms of time
  }
  const double modified = trend_ * double(std::min<size_t>(groups_, 60)) * 4.0;

  // Adaptive threshold.
  const double dt_ms = std::min(100.0, double(arrival_ns - last_threshold_update_ns_) * 1e-6);
  last_threshold_update_ns_ = arrival_ns;
  if (std::abs(modified) < threshold_ms_ + 15.0) {
    const double k = std::abs(modified) < threshold_ms_ ? 0.00018 : 0.01;
    threshold_ms_ = std::clamp(threshold_ms_ + dt_ms * k * (std::abs(modified) - threshold_ms_), 6.0, 600.0);
  }
  if (modified > threshold_ms_) {
    if (overuse_since_ns_ < 0) overuse_since_ns_ = arrival_ns;
    if (arrival_ns - overuse_since_ns_ >= 10'000'000) signal_ = Signal::kOveruse;
  } else {
    overuse_since_ns_ = -1;
    signal_ = modified < -threshold_ms_ ? Signal::kUnderuse : Signal::kNormal;
  }
  update_rate(arrival_ns);
}

void DelayBasedEstimator::update_rate(int64_t now_ns) {
  const double dt_s = std::min(1.0, double(now_ns - last_rate_update_ns_) * 1e-9);
  last_rate_update_ns_ = now_ns;
  switch (signal_) {
    case Signal::kOveruse:
      if (received_bps_ > 0) estimate_bps_ = std::min(estimate_bps_, 0.85 * received_bps_);
      // Decrease once, then let the queue drain before reacting again.
      signal_ = Signal::kUnderuse;
      accumulated_ms_ = smoothed_ms_ = 0;
      groups_ = 0;
      break;
    case Signal::kUnderuse:
      break;  // hold
    case Signal::kNormal:
      estimate_bps_ *= std::pow(1.08, dt_s);
      // Never more than 1.5x what actually arrives: an estimate far above use cannot be trusted.
      if (received_bps_ > 0)
        estimate_bps_ = std::min(estimate_bps_, std::max(1.5 * received_bps_, 100'000.0));
      break;
  }
}

void LossBasedController::on_report(uint64_t received, uint64_t expected, int64_t delay_based_bps,
                                    int64_t now_ns, int64_t received_bps, bool link_limited) {
  if (window_start_ns_ < 0) window_start_ns_ = now_ns;
  window_received_ += received;
  window_expected_ += expected;
  if (received_bps > 0) received_bps_ = received_bps;
  window_link_limited_ |= link_limited;
  if (now_ns - window_start_ns_ >= 500'000'000 && window_expected_ >= 20) {
    const double loss = 1.0 - double(window_received_) / double(window_expected_);
    if (loss > 0.10) {
      rate_bps_ *= 1.0 - 0.5 * loss;
      // Loss while the link shows a bottleneck is its overflow, and what the receiver got meanwhile is what
      // the bottleneck carries: no return above 0.85 x that at once. (Random loss on a link with room,
      // which shows no bottleneck, still returns at once.)
      if (window_link_limited_ && received_bps_ > 0) {
        overflow_bps_ = double(received_bps_);
        ceiling_bps_ = 0.85 * overflow_bps_;
        rate_bps_ = std::min(rate_bps_, ceiling_bps_);
      }
    } else if (loss < 0.02) {
      // Without loss the loss-based bound must not hold back the delay-based one (as libwebrtc does), and
      // after a loss burst it returns to it at once, but for the ceiling heavy loss left: it rises 5 % a
      // window up to the rate that overflowed, and 25 % a window past it (the bottleneck has moved: a cap
      // lifted, a flow gone), until it no longer binds. Near the old limit slowly, away from it fast, as
      // CUBIC grows its window around the last loss.
      double back_to = double(delay_based_bps);
      if (ceiling_bps_ > 0) {
        back_to = std::min(back_to, ceiling_bps_);
        ceiling_bps_ *= ceiling_bps_ < overflow_bps_ ? 1.05 : 1.25;
        if (delay_based_bps > 0 && ceiling_bps_ >= double(delay_based_bps)) ceiling_bps_ = 0;
      }
      rate_bps_ = std::max(rate_bps_ * 1.05, back_to);
    }
    // Nor float above it: a bound far above what the link has shown would let the next loss burst pass
    // without a decrease.
    if (delay_based_bps > 0) rate_bps_ = std::min(rate_bps_, double(delay_based_bps));
    rate_bps_ = std::clamp(rate_bps_, double(min_bps_), double(max_bps_));
    window_start_ns_ = now_ns;
    window_received_ = window_expected_ = 0;
    window_link_limited_ = false;
  }
  double target = rate_bps_;
  if (delay_based_bps > 0) target = std::min(target, double(delay_based_bps));
  target_bps_ = std::clamp(int64_t(target), min_bps_, max_bps_);
}

}  // namespace kairo
