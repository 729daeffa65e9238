#include "node/room.hpp"
#include "core/names.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <glm/gtc/matrix_transform.hpp>
#include <glm/gtc/quaternion.hpp>

#include "core/clock.hpp"
#include "core/error.hpp"

namespace kairo {
namespace {

// Avatar proportions, metres: a head-sized box, a visor on the face (-Z is forward), hand-sized boxes.
constexpr glm::vec3 kHeadSize(0.16f, 0.2f, 0.2f);
constexpr glm::vec3 kVisorSize(0.14f, 0.05f, 0.02f);
constexpr glm::vec3 kVisorOffset(0.0f, 0.02f, -0.105f);
constexpr float kHandSize = 0.07f;
constexpr float kGrabThreshold = 0.5f, kReleaseThreshold = 0.3f;

glm::mat4 pose_matrix(const glm::vec3& position, const glm::quat& orientation) {
  return glm::translate(glm::mat4(1.0f), position) * glm::mat4_cast(orientation);
}

}  // namespace

Room::Room(std::string name, const RoomOptions& options, EventHook on_event)
    : name_(std::move(name)),
      options_(options),
      on_event_(std::move(on_event)),
      empty_since_ns_(steady_now_ns()) {
  if (options_.object_spawns.size() > wire::kMaxRoomObjects)
    throw_invalid_input("a room has at most " + std::to_string(wire::kMaxRoomObjects) + " shared objects");
  for (const glm::vec3& spawn : options_.object_spawns) objects_.push_back(SharedObject{.position = spawn});
}

Room::Member* Room::seated(const RoomSeat& seat) {
  if (seat.slot >= members_.size() || !members_[seat.slot].present || members_[seat.slot].token != seat.token)
    return nullptr;
  return &members_[seat.slot];
}

RoomSeat Room::join(std::string_view user, int64_t now_ns) {
  std::lock_guard lock(mutex_);
  for (size_t slot = 0; slot < members_.size(); ++slot) {
    Member& m = members_[slot];
    if (m.present) continue;
    m = Member{};
    m.present = true;
    m.token = next_token_++;
    m.user = wire::make_user_name(user);
    m.joined_ns = now_ns;
    empty_since_ns_ = -1;
    event(wire::RoomEventKind::kJoin, uint8_t(slot), 0, now_ns);
    spdlog::info("room {}: {} joined (slot {})", escape_for_log(name_),
                 escape_for_log(wire::user_name_view(m.user)), slot);
    return RoomSeat{.slot = uint8_t(slot), .token = m.token};
  }
  throw_invalid_input("room \"" + name_ + "\" is full (" + std::to_string(wire::kMaxRoomMembers) +
                      " members)");
}

void Room::leave(const RoomSeat& seat, int64_t now_ns) {
  std::lock_guard lock(mutex_);
  Member* m = seated(seat);
  if (m == nullptr) return;
  for (Hand& hand : m->hands) release(seat.slot, hand, now_ns);
  event(wire::RoomEventKind::kLeave, seat.slot, 0, now_ns);
  spdlog::info("room {}: {} left", escape_for_log(name_), escape_for_log(wire::user_name_view(m->user)));
  *m = Member{};
  if (std::none_of(members_.begin(), members_.end(), [](const Member& x) { return x.present; }))
    empty_since_ns_ = now_ns;
}

void Room::update_head(const RoomSeat& seat, const Pose& head) {
  std::lock_guard lock(mutex_);
  if (Member* m = seated(seat)) {
    m->head = head;
    m->has_head = true;
  }
}

void Room::update_hand(const RoomSeat& seat, const wire::HandMessage& message, int64_t now_ns) {
  std::lock_guard lock(mutex_);
  Member* m = seated(seat);
  if (m == nullptr || (message.hand != wire::kLeftHand && message.hand != wire::kRightHand)) return;
  const uint8_t slot = seat.slot;
  Hand& hand = m->hands[message.hand - 1];
  if (message.time_ns <= hand.last_time_ns) {
    ++counters_.stale_hands;  // reordered on the way: a newer sample is already applied
    return;
  }
  hand.last_time_ns = message.time_ns;
  hand.pose = pose_from_arrays(message.position, message.orientation);
  if (hand.tracked != message.tracked) {
    hand.tracked = message.tracked;
    ++version_;
    ++membership_version_;
  }
  const bool gripping =
      message.tracked && message.grip >= (hand.gripping ? kReleaseThreshold : kGrabThreshold);
  const bool grabbing = gripping && !hand.gripping;
  hand.gripping = gripping;
  if (!gripping) release(slot, hand, now_ns);
  const glm::mat4 hand_matrix = pose_matrix(hand.pose.position, hand.pose.orientation);
  if (grabbing && hand.holding < 0) {
    const int object = grabbable_object(hand.pose);
    if (object >= 0 && objects_[size_t(object)].holder >= 0) {
      ++counters_.grabs_refused;  // held by someone (or the other hand): no stealing
    } else if (object >= 0) {
      SharedObject& o = objects_[size_t(object)];
      o.holder = slot;
      hand.holding = object;
      hand.grab_offset = glm::inverse(hand_matrix) * pose_matrix(o.position, o.orientation);
      ++counters_.grabs;
      event(wire::RoomEventKind::kGrab, slot, uint8_t(object), now_ns);
    }
  }
  if (hand.holding >= 0) {
    SharedObject& o = objects_[size_t(hand.holding)];
    const glm::mat4 object_matrix = hand_matrix * hand.grab_offset;
    o.position = glm::vec3(object_matrix[3]);
    o.orientation = glm::normalize(glm::quat_cast(glm::mat3(object_matrix)));
    ++version_;
  }
}

void Room::release(uint8_t slot, Hand& hand, int64_t now_ns) {
  if (hand.holding < 0) return;
  const int object = std::exchange(hand.holding, -1);
  objects_[size_t(object)].holder = -1;
  ++counters_.releases;
  event(wire::RoomEventKind::kRelease, slot, uint8_t(object), now_ns);
}

int Room::grabbable_object(const Pose& hand) const {
  int best = -1;
  float best_distance = options_.grab_reach;
  const float half = options_.object_size * 0.5f;
  for (size_t i = 0; i < objects_.size(); ++i) {
    // The hand in the object's frame; its distance from the box.
    const glm::vec3 local = glm::inverse(objects_[i].orientation) * (hand.position - objects_[i].position);
    const float distance = glm::length(glm::max(glm::abs(local) - glm::vec3(half), glm::vec3(0.0f)));
    if (distance <= best_distance) {
      best = int(i);
      best_distance = distance;
    }
  }
  return best;
}

void Room::event(wire::RoomEventKind kind, uint8_t slot, uint8_t object, int64_t now_ns) {
  ++version_;
  ++membership_version_;
  const uint32_t seq = next_event_seq_++;
  recent_[seq % recent_.size()] = wire::RoomEvent{.seq = seq,
                                                  .kind = kind,
                                                  .slot = slot,
                                                  .object = object,
                                                  .time_ns = now_ns,
                                                  .user = members_[slot].user};
  recent_count_ = std::min(recent_count_ + 1, recent_.size());
  if (on_event_) on_event_(kind);
}

size_t Room::draws_for(uint8_t viewer, std::span<DynamicDraw, kMaxDraws> out, uint64_t& version) const {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (size_t slot = 0; slot < members_.size(); ++slot) {
    const Member& m = members_[slot];
    if (!m.present) continue;
    const BuiltinMaterial colour = avatar_material(uint32_t(slot));
    if (slot != viewer && m.has_head) {  // never one's own head: it would fill one's own view
      const glm::mat4 head = pose_matrix(m.head.position, m.head.orientation);
      out[n++] = DynamicDraw{.model = glm::scale(head, kHeadSize), .material = colour};
      out[n++] = DynamicDraw{.model = glm::scale(glm::translate(head, kVisorOffset), kVisorSize),
                             .material = BuiltinMaterial::kVisor};
    }
    for (const Hand& hand : m.hands)
      if (hand.tracked)
        out[n++] = DynamicDraw{
            .model = glm::scale(pose_matrix(hand.pose.position, hand.pose.orientation), glm::vec3(kHandSize)),
            .material = colour};
  }
  for (const SharedObject& o : objects_)
    out[n++] = DynamicDraw{
        .model = glm::scale(pose_matrix(o.position, o.orientation), glm::vec3(options_.object_size)),
        .material = BuiltinMaterial::kSharedObject};
  version = version_;
  return n;
}

void Room::state_for(uint8_t viewer, int64_t now_ns, wire::RoomStateMessage& out) const {
  std::lock_guard lock(mutex_);
  out.version = version_;
  out.node_time_ns = now_ns;
  out.your_slot = viewer;
  out.member_count = 0;
  for (size_t slot = 0; slot < members_.size(); ++slot) {
    const Member& m = members_[slot];
    if (!m.present) continue;
    out.members[out.member_count++] =
        wire::RoomMember{.slot = uint8_t(slot),
                         .hands = uint8_t((m.hands[0].tracked ? 1 : 0) | (m.hands[1].tracked ? 2 : 0)),
                         .user = m.user,
                         .joined_ns = m.joined_ns};
  }
  out.object_count = uint8_t(objects_.size());
  for (size_t i = 0; i < objects_.size(); ++i) {
    const SharedObject& o = objects_[i];
    wire::RoomObject& r = out.objects[i];
    r.id = uint8_t(i);
    r.holder_slot = o.holder >= 0 ? uint8_t(o.holder) : wire::kNoSlot;
    for (int k = 0; k < 3; ++k) r.position[k] = o.position[k];
    r.orientation[0] = o.orientation.x;
    r.orientation[1] = o.orientation.y;
    r.orientation[2] = o.orientation.z;
    r.orientation[3] = o.orientation.w;
  }
  out.event_count = uint8_t(recent_count_);
  const uint32_t first = next_event_seq_ - uint32_t(recent_count_);
  for (size_t i = 0; i < recent_count_; ++i) out.events[i] = recent_[(first + i) % recent_.size()];
}

uint64_t Room::version() const {
  std::lock_guard lock(mutex_);
  return version_;
}
uint64_t Room::membership_version() const {
  std::lock_guard lock(mutex_);
  return membership_version_;
}
size_t Room::members() const {
  std::lock_guard lock(mutex_);
  return size_t(std::count_if(members_.begin(), members_.end(), [](const Member& m) { return m.present; }));
}
int64_t Room::empty_since_ns() const {
  std::lock_guard lock(mutex_);
  return empty_since_ns_;
}
RoomCounters Room::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

RoomRegistry::RoomRegistry(double keep_empty_s, RoomOptions options, Room::EventHook on_event)
    : keep_empty_s_(keep_empty_s), options_(std::move(options)), on_event_(std::move(on_event)) {}

std::shared_ptr<Room> RoomRegistry::room(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto& room = rooms_[name];
  if (!room) room = std::make_shared<Room>(name, options_, on_event_);
  return room;
}

void RoomRegistry::forget_idle(int64_t now_ns) {
  std::lock_guard lock(mutex_);
  std::erase_if(rooms_, [&](const auto& entry) {
    const int64_t since = entry.second->empty_since_ns();
    return since >= 0 && double(now_ns - since) * 1e-9 > keep_empty_s_;
  });
}

size_t RoomRegistry::size() const {
  std::lock_guard lock(mutex_);
  return rooms_.size();
}

}  // namespace kairo
