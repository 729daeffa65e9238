#pragma once
// A session's mailbox (streaming/uplink.hpp): its client's messages as the transport delivers them, on the
// transport's thread. The room, the node's authority on shared state, applies heads and hands at once (the
// room is current whichever session renders next); the render loop takes the newest pose and the input
// events in order. Transport-agnostic: the UDP stream and a browser transport deliver here alike.
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "node/room.hpp"
#include "streaming/uplink.hpp"

namespace kairo {

struct ReceivedPose {
  wire::PoseMessage pose;
  int64_t received_ns = 0;  // node clock
};

class SessionInbox final : public UplinkMailbox {
 public:
  // `room` may be null (a session without a room).
  SessionInbox(std::shared_ptr<Room> room, RoomSeat seat);
  void deliver(const UplinkMessage& message, int64_t received_ns) override;

  std::optional<ReceivedPose> latest_pose() const;
  // Waits until a pose newer than `pose_id` is in, or until `deadline_ns` (steady clock); returns at once if
  // one is. The render loop starts a frame as its client's pose lands (the client's clock, not the node's).
  void wait_for_pose_after(uint64_t pose_id, int64_t deadline_ns) const;
  // The median gap between the newest poses' arrivals (their sample times), 0 until known.
  int64_t pose_interval_ns() const;
  // Input events in arrival order since the last call (bounded: past kMaxInputs the oldest are dropped and
  // counted), swapped into `out` (cleared first): the two vectors trade buffers, so neither side allocates
  // once both have grown.
  void take_inputs(std::vector<wire::InputMessage>& out);
  uint64_t inputs_dropped() const;
  static constexpr size_t kMaxInputs = 256;

 private:
  std::shared_ptr<Room> room_;
  RoomSeat seat_;
  mutable std::mutex mutex_;
  mutable std::condition_variable pose_arrived_;
  std::optional<ReceivedPose> pose_;
  int64_t pose_interval_ns_ = 0;  // EWMA of the sample-time gap between consecutive new poses
  std::vector<wire::InputMessage> inputs_;
  uint64_t inputs_dropped_ = 0;
};

}  // namespace kairo
