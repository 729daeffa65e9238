#include "core/synthetic_trace.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.hpp"

namespace kairo {
namespace {

// Minimum-jerk profile: the velocity shape of human head turns (Flash & Hogan 1985).
double minimum_jerk(double tau) {
  return tau * tau * tau * (10.0 - 15.0 * tau + 6.0 * tau * tau);
}

// Ornstein-Uhlenbeck step: a smooth random drift pulled back towards zero.
double ou_step(double value, double theta, double sigma, double dt, std::normal_distribution<double>& normal,
               std::mt19937_64& rng) {
  return value - theta * value * dt + sigma * std::sqrt(dt) * normal(rng);
}

}  // namespace

std::vector<TraceSample> synthetic_trace(const SyntheticTraceOptions& o) {
  if (!(o.duration_s > 0.0) || !(o.rate_hz > 0.0) || o.duration_s * o.rate_hz > 1e7)
    throw_invalid_input("synthetic trace needs a positive duration and rate, at most 10 million samples");

  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::exponential_distribution<double> next_turn(1.0 / o.mean_turn_interval_s);

  const double dt = 1.0 / o.rate_hz;
  const size_t count = static_cast<size_t>(std::floor(o.duration_s * o.rate_hz)) + 1;
  std::vector<TraceSample> samples;
  samples.reserve(count);

  double yaw = 0.0, pitch = 0.0, roll = 0.0;  // radians
  double yaw_rate = 0.0, pitch_rate = 0.0;    // slow exploration, rad/s
  glm::dvec3 sway(0.0);
  double turn_start = next_turn(rng), turn_duration = 0.0, turn_from = 0.0, turn_delta = 0.0;
  bool turning = false;

  for (size_t i = 0; i < count; ++i) {
    const double t = static_cast<double>(i) * dt;
    // Quick turns: 20-100 degrees, duration grows with amplitude like real head saccades (~150-450 ms).
    if (!turning && t >= turn_start) {
      turning = true;
      const double amplitude = glm::radians(20.0 + 80.0 * uniform(rng));
      turn_delta = (uniform(rng) < 0.5 ? -1.0 : 1.0) * amplitude;
      turn_duration = 0.15 + amplitude / glm::radians(300.0);
      turn_from = yaw;
    }
    if (turning) {
      const double tau = std::min(1.0, (t - turn_start) / turn_duration);
      yaw = turn_from + turn_delta * minimum_jerk(tau);
      if (tau >= 1.0) {
        turning = false;
        turn_start = t + next_turn(rng);
      }
    } else {
      yaw_rate = ou_step(yaw_rate, 1.5, 0.6, dt, normal, rng);
      yaw += yaw_rate * dt;
    }
    pitch_rate = ou_step(pitch_rate, 2.0, 0.4, dt, normal, rng);
    pitch = std::clamp(pitch + pitch_rate * dt - 0.5 * pitch * dt, glm::radians(-40.0), glm::radians(40.0));
    roll = ou_step(roll, 1.0, 0.03, dt, normal, rng);
    for (int axis = 0; axis < 3; ++axis) sway[axis] = ou_step(sway[axis], 0.5, 0.02, dt, normal, rng);

    const glm::dquat orientation = glm::angleAxis(yaw, glm::dvec3(0, 1, 0)) *
                                   glm::angleAxis(pitch, glm::dvec3(1, 0, 0)) *
                                   glm::angleAxis(roll, glm::dvec3(0, 0, -1));
    // The eyes pivot around the neck, 10 cm below and 8 cm behind them, so turning also translates them.
    const glm::dvec3 neck_to_eyes(0.0, 0.10, -0.08);
    const glm::dvec3 neck(0.0, o.eye_height_m - 0.10, 0.08);
    TraceSample sample;
    sample.t_ns = static_cast<int64_t>(std::llround(t * 1e9));
    sample.head.position = glm::vec3(neck + orientation * neck_to_eyes + sway);
    sample.head.orientation = glm::quat(glm::normalize(orientation));
    sample.ipd = o.ipd;
    samples.push_back(sample);
  }
  return samples;
}

}  // namespace kairo
