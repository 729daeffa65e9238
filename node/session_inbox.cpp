#include "node/session_inbox.hpp"

#include "core/pose.hpp"

namespace kairo {

SessionInbox::SessionInbox(std::shared_ptr<Room> room, RoomSeat seat) : room_(std::move(room)), seat_(seat) {
  inputs_.reserve(kMaxInputs);
}

void SessionInbox::deliver(const UplinkMessage& message, int64_t received_ns) {
  std::visit(Overloaded{[&](const wire::PoseMessage& p) {
                          if (room_) room_->update_head(seat_, pose_from_arrays(p.position, p.orientation));
                          std::lock_guard lock(mutex_);
                          // Newest by id: a pose overtaken in the network never replaces a later one.
                          if (!pose_ || p.pose_id > pose_->pose.pose_id) pose_ = ReceivedPose{p, received_ns};
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
