#pragma once
// A multi-user room on a node (docs/rooms.md): the users of one room share one scene instance. Each member's
// head and hands are avatars in everyone else's views (their own hands in their own view too), and the
// room's shared objects can be grabbed and moved.
//
// The node is the authority. Poses and hands are applied as they arrive, on the sending session's network
// thread; each session's render thread takes a snapshot of the room for every frame it renders. One lock
// per room, held for copies only: sessions of different rooms share nothing.
//
// Conflict rule: an object is held by at most one hand. A grab is the grip rising past 0.5 with the hand
// within reach of a free object; the first such grab the node processes wins, and any grab of a held
// object is refused (no stealing). The holder keeps it until the grip falls below 0.3, the hand stops being
// tracked, or the holder leaves; it stays where it was let go.
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/pose.hpp"
#include "renderer/dynamic_draw.hpp"
#include "streaming/room_messages.hpp"

namespace kairo {

struct RoomOptions {
  // Where the shared objects start: by default one 20 cm cube at chest height a little ahead of the origin,
  // where anyone standing at the origin sees it, whatever the scene.
  std::vector<glm::vec3> object_spawns{glm::vec3(0.0f, 1.1f, -1.2f)};
  float object_size = 0.2f;  // edge, metres
  float grab_reach = 0.1f;   // how far outside an object's box a hand may be and still grab it
};

struct RoomCounters {
  uint64_t grabs = 0, grabs_refused = 0, releases = 0, stale_hands = 0;
};

// A member's place in a room: its slot and a token that is never reused, so that late messages of a member
// who left never move the avatar of whoever took the slot next.
struct RoomSeat {
  uint8_t slot = wire::kNoSlot;
  uint64_t token = 0;
};

class Room {
 public:
  // `on_event` is called for every join, leave, grab and release, with the room's lock held: keep it short.
  using EventHook = std::function<void(wire::RoomEventKind)>;
  Room(std::string name, const RoomOptions& options = {}, EventHook on_event = {});
  const std::string& name() const { return name_; }

  // Adds a member; throws kairo::Error when the room is full.
  RoomSeat join(std::string_view user, int64_t now_ns);
  void leave(const RoomSeat& seat, int64_t now_ns);  // lets go of whatever the member held; idempotent
  void update_head(const RoomSeat& seat, const Pose& head);
  // Applies a hand: moves its avatar, grabs, moves or releases an object. Reordered (older) messages are
  // ignored.
  void update_hand(const RoomSeat& seat, const wire::HandMessage& hand, int64_t now_ns);

  // What `viewer` sees of the room: the others' heads (with a visor where they look), every tracked hand,
  // the shared objects. Returns the number of draws written (at most kMaxDraws) and the state's version.
  static constexpr size_t kMaxDraws = wire::kMaxRoomMembers * 4 + wire::kMaxRoomObjects;
  size_t draws_for(uint8_t viewer, std::span<DynamicDraw, kMaxDraws> out, uint64_t& version) const;
  void state_for(uint8_t viewer, int64_t now_ns, wire::RoomStateMessage& out) const;
  uint64_t version() const;
  uint64_t membership_version() const;  // changes with joins, leaves, grabs and releases only
  size_t members() const;
  int64_t empty_since_ns() const;  // -1 while someone is in the room
  RoomCounters counters() const;

 private:
  struct Hand {
    bool tracked = false, gripping = false;
    int64_t last_time_ns = INT64_MIN;
    Pose pose;
    int holding = -1;             // object index
    glm::mat4 grab_offset{1.0f};  // the object's transform in the hand's frame when it was grabbed
  };
  struct Member {
    bool present = false;
    uint64_t token = 0;
    wire::UserName user{};
    int64_t joined_ns = 0;
    Pose head;
    bool has_head = false;
    std::array<Hand, 2> hands{};
  };
  struct SharedObject {
    glm::vec3 position{0.0f};
    glm::quat orientation{1, 0, 0, 0};
    int holder = -1;  // slot
  };

  Member* seated(const RoomSeat& seat);                                                // with the lock held
  void event(wire::RoomEventKind kind, uint8_t slot, uint8_t object, int64_t now_ns);  // with the lock held
  void release(uint8_t slot, Hand& hand, int64_t now_ns);                              // with the lock held
  int grabbable_object(const Pose& hand) const;                                        // with the lock held

  const std::string name_;
  const RoomOptions options_;
  const EventHook on_event_;
  mutable std::mutex mutex_;
  std::array<Member, wire::kMaxRoomMembers> members_{};
  std::vector<SharedObject> objects_;  // sized at construction, never resized
  uint64_t version_ = 1, membership_version_ = 1;
  uint32_t next_event_seq_ = 1;
  uint64_t next_token_ = 1;
  std::array<wire::RoomEvent, wire::kMaxRoomEvents> recent_{};  // ring of the newest events
  size_t recent_count_ = 0;
  int64_t empty_since_ns_;
  RoomCounters counters_;
};

// The rooms of a node, by name. A room outlives its last member by `keep_empty_s` so that a user who
// reconnects (or the next one in) finds it as it was left.
class RoomRegistry {
 public:
  explicit RoomRegistry(double keep_empty_s = 60.0, RoomOptions options = {}, Room::EventHook on_event = {});
  std::shared_ptr<Room> room(const std::string& name);  // created on first use
  void forget_idle(int64_t now_ns);                     // rooms empty for longer than keep_empty_s
  size_t size() const;

 private:
  const double keep_empty_s_;
  const RoomOptions options_;
  const Room::EventHook on_event_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Room>> rooms_;
};

}  // namespace kairo
