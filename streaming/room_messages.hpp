#pragma once
// The messages of multi-user rooms (docs/rooms.md): hands go up, the room's state comes down.
//
// The room state is sent whole (members, shared objects, the last few events) rather than as a stream of
// changes: a lost datagram is repaired by the next one, a client that (re)connects is up to date with the
// first one it gets, and nothing needs acknowledging. Events carry sequence numbers so that a client sees
// each join, leave, grab and release once even though it receives it in several states.
// Fixed little-endian layouts, bounded counts: parsing is a bounds check and loads, no allocation.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace kairo::wire {

// Client -> server whenever a tracked hand moves (the client's display rate or faster).
struct HandMessage {
  int64_t time_ns = 0;  // client clock: when the hand was sampled (older than the last one applied: ignored)
  uint8_t hand = 1;     // 1 left, 2 right (as InputMessage::device)
  bool tracked = true;  // false: the hand is not seen (its avatar disappears, anything it held is let go)
  float grip = 0;       // 0..1; an object is grabbed when it rises past 0.5 and released below 0.3
  float position[3] = {0, 0, 0};
  float orientation[4] = {0, 0, 0, 1};  // x, y, z, w
  static constexpr size_t kSize = 42;
};
constexpr uint8_t kLeftHand = 1, kRightHand = 2;

constexpr size_t kMaxRoomMembers = 8;
constexpr size_t kMaxRoomObjects = 4;
constexpr size_t kMaxRoomEvents = 8;   // the most recent ones, in every state message
constexpr size_t kUserNameBytes = 24;  // UTF-8, NUL-padded; longer names are cut at a character boundary
constexpr uint8_t kNoSlot = 0xFF;

// A user's name as it travels: at most kUserNameBytes - 1 bytes, cut between characters.
using UserName = std::array<char, kUserNameBytes>;
UserName make_user_name(std::string_view name);
std::string_view user_name_view(const UserName& name);

struct RoomMember {
  uint8_t slot = 0;   // 0..kMaxRoomMembers-1, the avatar's colour; stable while the member stays
  uint8_t hands = 0;  // bit 0: left hand tracked, bit 1: right hand tracked
  UserName user{};
  int64_t joined_ns = 0;  // node clock
};

struct RoomObject {
  uint8_t id = 0;
  uint8_t holder_slot = kNoSlot;  // the member holding it, kNoSlot when free
  float position[3] = {0, 0, 0};
  float orientation[4] = {0, 0, 0, 1};
};

enum class RoomEventKind : uint8_t { kJoin = 1, kLeave = 2, kGrab = 3, kRelease = 4 };
const char* room_event_name(RoomEventKind kind);  // "join", "leave", "grab", "release" (logs, JSON, metrics)

struct RoomEvent {
  uint32_t seq = 0;  // per room, from 1, without gaps
  RoomEventKind kind = RoomEventKind::kJoin;
  uint8_t slot = 0;
  uint8_t object = 0;   // grab and release only
  int64_t time_ns = 0;  // node clock
  UserName user{};
};

struct RoomStateMessage {
  uint64_t version = 0;  // grows with every change of the room (members, holders, object transforms)
  int64_t node_time_ns = 0;
  uint8_t your_slot = kNoSlot;
  uint8_t member_count = 0, object_count = 0, event_count = 0;
  std::array<RoomMember, kMaxRoomMembers> members{};
  std::array<RoomObject, kMaxRoomObjects> objects{};
  std::array<RoomEvent, kMaxRoomEvents> events{};  // oldest first
  size_t size() const { return 20 + member_count * 34 + object_count * 30 + event_count * 39; }
  static constexpr size_t kMaxSize = 20 + kMaxRoomMembers * 34 + kMaxRoomObjects * 30 + kMaxRoomEvents * 39;
};

size_t write(const HandMessage& m, std::span<uint8_t> out);
size_t write(const RoomStateMessage& m, std::span<uint8_t> out);
// Refuse wrong sizes, unknown hands or event kinds, slots out of range, non-finite or absurd values, zero
// quaternions, and user names that are not UTF-8.
std::optional<HandMessage> read_hand(std::span<const uint8_t> in);
std::optional<RoomStateMessage> read_room_state(std::span<const uint8_t> in);

}  // namespace kairo::wire
