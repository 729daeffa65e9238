#include "node/session_inbox.hpp"

#include "core/pose.hpp"

namespace kairo {

SessionInbox::SessionInbox(std::shared_ptr<Room> room, RoomSeat seat) : room_(std::move(room)), seat_(seat) {
  inputs_.reserve(kMaxInputs);
}

void SessionInbox::deliver(const UplinkMessage& message, int64_t received_ns) {
  std::visit(Overloaded{[&](const wire::PoseMessage& p) {
                          {
                            std::lock_guard lock(mutex_);
                            // Newest by id: a pose overtaken in the network, or repeated in a later
                            // datagram (wire::PoseBatch), never replaces a later one.
                            if (pose_ && p.pose_id <= pose_->pose.pose_id) return;
                            if (pose_ && p.pose_id == pose_->pose.pose_id + 1) {
                              const int64_t gap = p.sample_time_ns - pose_->pose.sample_time_ns;
                              if (gap > 0 && gap < 1'000'000'000)
                                pose_interval_ns_ =
                                    pose_interval_ns_ == 0 ? gap : (7 * pose_interval_ns_ + gap) / 8;
                            }
                            pose_ = ReceivedPose{p, received_ns};
                          }
                          pose_arrived_.notify_all();
                          if (room_) room_->update_head(seat_, pose_from_arrays(p.position, p.orientation));
                        },
                        [&](const wire::HandMessage& h) {
                          if (room_) room_->update_hand(seat_, h, received_ns);
                        },
                        [&](const wire::InputMessage& input) {
                          std::lock_guard lock(mutex_);
                          if (inputs_.size() >= kMaxInputs) {
                            inputs_.erase(inputs_.begin());  // drop policy: the oldest event goes
                            ++inputs_dropped_;
                          }
                          inputs_.push_back(input);
                        }},
             message);
}

std::optional<ReceivedPose> SessionInbox::latest_pose() const {
  std::lock_guard lock(mutex_);
  return pose_;
}

void SessionInbox::wait_for_pose_after(uint64_t pose_id, int64_t deadline_ns) const {
  std::unique_lock lock(mutex_);
  const auto deadline = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline_ns));
  pose_arrived_.wait_until(lock, deadline, [&] { return pose_ && pose_->pose.pose_id > pose_id; });
}

int64_t SessionInbox::pose_interval_ns() const {
  std::lock_guard lock(mutex_);
  return pose_interval_ns_;
}

void SessionInbox::take_inputs(std::vector<wire::InputMessage>& out) {
  out.clear();
  std::lock_guard lock(mutex_);
  out.swap(inputs_);
}

uint64_t SessionInbox::inputs_dropped() const {
  std::lock_guard lock(mutex_);
  return inputs_dropped_;
}

}  // namespace kairo
