#include "node/pose_predictor.hpp"

#include <algorithm>
#include <glm/gtx/quaternion.hpp>

namespace kairo {

namespace {

// Rotation vector (axis * angle) of a unit quaternion, taking the short way round.
glm::vec3 rotation_vector(glm::quat q) {
  if (q.w < 0) q = -q;
  const float s = glm::length(glm::vec3(q.x, q.y, q.z));
  if (s < 1e-9f) return glm::vec3(q.x, q.y, q.z) * 2.0f;
  const float angle = 2.0f * std::atan2(s, q.w);
  return glm::vec3(q.x, q.y, q.z) * (angle / s);
}

glm::quat from_rotation_vector(const glm::vec3& v) {
  const float angle = glm::length(v);
  if (angle < 1e-9f) return glm::quat(1, 0.5f * v.x, 0.5f * v.y, 0.5f * v.z);
  return glm::angleAxis(angle, v / angle);
}

}  // namespace

void PosePredictor::add(int64_t time_ns, const Pose& pose) {
  if (count_ > 0 && time_ns <= newest_time_ns()) return;
  ring_[next_] = Sample{time_ns, pose};
  next_ = (next_ + 1) % ring_.size();
  count_ = std::min(count_ + 1, ring_.size());
}

int64_t PosePredictor::newest_time_ns() const {
  return ring_[(next_ + ring_.size() - 1) % ring_.size()].time_ns;
}

const Pose& PosePredictor::newest() const {
  return ring_[(next_ + ring_.size() - 1) % ring_.size()].pose;
}

Pose PosePredictor::predict(int64_t time_ns) const {
  if (count_ == 0) return Pose{};
  const Sample& last = ring_[(next_ + ring_.size() - 1) % ring_.size()];
  const int64_t horizon = std::clamp<int64_t>(time_ns - last.time_ns, 0, kMaxHorizonNs);
  if (horizon == 0 || count_ < 2) return last.pose;
  // Least-squares slope over the window (at least the two newest samples), times relative to the newest.
  double st = 0, stt = 0;
  glm::dvec3 sp(0), stp(0), sr(0), str(0);
  int n = 0;
  const glm::quat inverse_last = glm::inverse(last.pose.orientation);
  for (size_t i = 0; i < count_; ++i) {
    const Sample& s = ring_[(next_ + ring_.size() - 1 - i) % ring_.size()];
    const double t = double(s.time_ns - last.time_ns) * 1e-9;
    if (n >= 2 && -t * 1e9 > double(kWindowNs)) break;
    const glm::dvec3 p(s.pose.position - last.pose.position);
    const glm::dvec3 r(rotation_vector(s.pose.orientation * inverse_last));
    st += t;
    stt += t * t;
    sp += p;
    stp += t * p;
    sr += r;
    str += t * r;
    ++n;
  }
  const double denominator = n * stt - st * st;
  if (denominator <= 1e-18) return last.pose;
  const glm::dvec3 velocity = (double(n) * stp - st * sp) / denominator;          // m/s
  const glm::dvec3 angular_velocity = (double(n) * str - st * sr) / denominator;  // rad/s, world frame
  const double h = double(horizon) * 1e-9;
  Pose out = last.pose;
  out.position += glm::vec3(velocity * h);
  out.orientation =
      glm::normalize(from_rotation_vector(glm::vec3(angular_velocity * h)) * last.pose.orientation);
  return out;
}

}  // namespace kairo
