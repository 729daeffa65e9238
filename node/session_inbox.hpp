#pragma once
// A session's mailbox (streaming/uplink.hpp): its client's messages as the transport delivers them, on the
// transport's thread. The room, the node's authority on shared state, applies heads and hands at once (the
// room is current whichever session renders next); the render loop takes the newest pose and the input
// events in order. Transport-agnostic: the UDP stream and a browser transport deliver here alike.
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
  std::optional<ReceivedPose> pose_;
  std::vector<wire::InputMessage> inputs_;
  uint64_t inputs_dropped_ = 0;
};

}  // namespace kairo
