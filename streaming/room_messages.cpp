#include "streaming/room_messages.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "core/names.hpp"
#include "streaming/wire.hpp"

namespace kairo::wire {
namespace {

size_t utf8_sequence(std::string_view s, size_t i) {
  return utf8_char_at(s, i).length;
}

bool valid_name(const UserName& name) {
  const std::string_view s = user_name_view(name);
  for (size_t i = s.size(); i < name.size(); ++i)
    if (name[i] != '\0') return false;  // one encoding per name: NUL padding only
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool finite_pose(const float* position, const float* orientation) {
  float norm = 0;
  for (int i = 0; i < 3; ++i)
    if (!std::isfinite(position[i]) || std::abs(position[i]) > 1e6f) return false;
  for (int i = 0; i < 4; ++i) norm += orientation[i] * orientation[i];
  return std::isfinite(norm) && norm > 1e-12f;
}

void put_pose(uint8_t* p, const float* position, const float* orientation) {
  for (int i = 0; i < 3; ++i) put_f32(p + 4 * i, position[i]);
  for (int i = 0; i < 4; ++i) put_f32(p + 12 + 4 * i, orientation[i]);
}
void get_pose(const uint8_t* p, float* position, float* orientation) {
  for (int i = 0; i < 3; ++i) position[i] = get_f32(p + 4 * i);
  for (int i = 0; i < 4; ++i) orientation[i] = get_f32(p + 12 + 4 * i);
}

}  // namespace

const char* room_event_name(RoomEventKind kind) {
  switch (kind) {
    case RoomEventKind::kJoin:
      return "join";
    case RoomEventKind::kLeave:
      return "leave";
    case RoomEventKind::kGrab:
      return "grab";
    case RoomEventKind::kRelease:
      return "release";
  }
  return "unknown";
}

UserName make_user_name(std::string_view name) {
  UserName out{};
  size_t used = 0;
  for (size_t i = 0; i < name.size();) {
    const size_t n = utf8_sequence(name, i);
    if (n == 0 || name[i] == '\0') {  // not UTF-8: stop rather than send bytes a client would refuse
      break;
    }
    if (used + n > kUserNameBytes - 1) break;
    std::memcpy(out.data() + used, name.data() + i, n);
    used += n;
    i += n;
  }
  return out;
}

std::string_view user_name_view(const UserName& name) {
  return std::string_view(name.data(), strnlen(name.data(), name.size()));
}

size_t write(const HandMessage& m, std::span<uint8_t> out) {
  if (out.size() < HandMessage::kSize) throw std::length_error("message buffer too small");
  uint8_t* p = out.data();
  put_u64(p, uint64_t(m.time_ns));
  p[8] = m.hand;
  p[9] = m.tracked ? 1 : 0;
  put_f32(p + 10, m.grip);
  put_pose(p + 14, m.position, m.orientation);
  return HandMessage::kSize;
}

std::optional<HandMessage> read_hand(std::span<const uint8_t> in) {
  if (in.size() != HandMessage::kSize) return std::nullopt;
  const uint8_t* p = in.data();
  HandMessage m{.time_ns = int64_t(get_u64(p)), .hand = p[8], .tracked = p[9] == 1, .grip = get_f32(p + 10)};
  get_pose(p + 14, m.position, m.orientation);
  if ((m.hand != kLeftHand && m.hand != kRightHand) || p[9] > 1) return std::nullopt;
  if (!(m.grip >= 0.0f && m.grip <= 1.0f)) return std::nullopt;  // also refuses NaN
  if (!finite_pose(m.position, m.orientation)) return std::nullopt;
  return m;
}

size_t write(const RoomStateMessage& m, std::span<uint8_t> out) {
  if (m.member_count > kMaxRoomMembers || m.object_count > kMaxRoomObjects || m.event_count > kMaxRoomEvents)
    throw std::invalid_argument("room state over its bounds");
  if (out.size() < m.size()) throw std::length_error("message buffer too small");
  uint8_t* p = out.data();
  put_u64(p, m.version);
  put_u64(p + 8, uint64_t(m.node_time_ns));
  p[16] = m.your_slot;
  p[17] = m.member_count;
  p[18] = m.object_count;
  p[19] = m.event_count;
  p += 20;
  for (size_t i = 0; i < m.member_count; ++i, p += 34) {
    const RoomMember& r = m.members[i];
    p[0] = r.slot;
    p[1] = r.hands;
    std::memcpy(p + 2, r.user.data(), kUserNameBytes);
    put_u64(p + 26, uint64_t(r.joined_ns));
  }
  for (size_t i = 0; i < m.object_count; ++i, p += 30) {
    const RoomObject& o = m.objects[i];
    p[0] = o.id;
    p[1] = o.holder_slot;
    put_pose(p + 2, o.position, o.orientation);
  }
  for (size_t i = 0; i < m.event_count; ++i, p += 39) {
    const RoomEvent& e = m.events[i];
    put_u32(p, e.seq);
    p[4] = uint8_t(e.kind);
    p[5] = e.slot;
    p[6] = e.object;
    put_u64(p + 7, uint64_t(e.time_ns));
    std::memcpy(p + 15, e.user.data(), kUserNameBytes);
  }
  return m.size();
}

std::optional<RoomStateMessage> read_room_state(std::span<const uint8_t> in) {
  if (in.size() < 20) return std::nullopt;
  const uint8_t* p = in.data();
  RoomStateMessage m{.version = get_u64(p),
                     .node_time_ns = int64_t(get_u64(p + 8)),
                     .your_slot = p[16],
                     .member_count = p[17],
                     .object_count = p[18],
                     .event_count = p[19]};
  if (m.member_count > kMaxRoomMembers || m.object_count > kMaxRoomObjects ||
      m.event_count > kMaxRoomEvents || in.size() != m.size())
    return std::nullopt;
  if (m.your_slot != kNoSlot && m.your_slot >= kMaxRoomMembers) return std::nullopt;
  p += 20;
  for (size_t i = 0; i < m.member_count; ++i, p += 34) {
    RoomMember& r = m.members[i];
    r.slot = p[0];
    r.hands = p[1];
    std::memcpy(r.user.data(), p + 2, kUserNameBytes);
    r.joined_ns = int64_t(get_u64(p + 26));
    if (r.slot >= kMaxRoomMembers || r.hands > 3 || !valid_name(r.user)) return std::nullopt;
  }
  for (size_t i = 0; i < m.object_count; ++i, p += 30) {
    RoomObject& o = m.objects[i];
    o.id = p[0];
    o.holder_slot = p[1];
    get_pose(p + 2, o.position, o.orientation);
    if ((o.holder_slot != kNoSlot && o.holder_slot >= kMaxRoomMembers) ||
        !finite_pose(o.position, o.orientation))
      return std::nullopt;
  }
  for (size_t i = 0; i < m.event_count; ++i, p += 39) {
    RoomEvent& e = m.events[i];
    e.seq = get_u32(p);
    e.kind = RoomEventKind(p[4]);
    e.slot = p[5];
    e.object = p[6];
    e.time_ns = int64_t(get_u64(p + 7));
    std::memcpy(e.user.data(), p + 15, kUserNameBytes);
    if (p[4] < 1 || p[4] > 4 || e.slot >= kMaxRoomMembers || !valid_name(e.user)) return std::nullopt;
    if (i > 0 && e.seq != m.events[i - 1].seq + 1) return std::nullopt;  // oldest first, without gaps
  }
  return m;
}

}  // namespace kairo::wire
