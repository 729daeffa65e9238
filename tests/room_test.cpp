// Rooms without a network: the wire messages (round trips and refusals) and the node's room authority
// (slots, avatars, grabbing, the conflict rule, events, state for reconnecting users).
#include <gtest/gtest.h>

#include <cstring>
#include <glm/gtc/matrix_transform.hpp>

#include "core/error.hpp"
#include "node/room.hpp"
#include "streaming/room_messages.hpp"

namespace kairo {
namespace {

wire::HandMessage hand_at(int64_t t, glm::vec3 p, float grip, uint8_t side = wire::kRightHand,
                          bool tracked = true) {
  return wire::HandMessage{.time_ns = t,
                           .hand = side,
                           .tracked = tracked,
                           .grip = grip,
                           .position = {p.x, p.y, p.z},
                           .orientation = {0, 0, 0, 1}};
}

glm::vec3 object_position(const Room& room) {
  wire::RoomStateMessage s;
  room.state_for(0, 0, s);
  return {s.objects[0].position[0], s.objects[0].position[1], s.objects[0].position[2]};
}

uint8_t holder(const Room& room) {
  wire::RoomStateMessage s;
  room.state_for(0, 0, s);
  return s.objects[0].holder_slot;
}

std::vector<wire::RoomEventKind> event_kinds(const Room& room) {
  wire::RoomStateMessage s;
  room.state_for(0, 0, s);
  std::vector<wire::RoomEventKind> kinds;
  for (size_t i = 0; i < s.event_count; ++i) kinds.push_back(s.events[i].kind);
  return kinds;
}

const glm::vec3 kSpawn(0.0f, 1.1f, -1.2f);

TEST(RoomMessages, round_trip_and_refuse_what_does_not_make_sense) {
  const wire::HandMessage hand = hand_at(42, {0.1f, 1.2f, -0.3f}, 0.75f, wire::kLeftHand, true);
  std::array<uint8_t, wire::HandMessage::kSize> hand_bytes{};
  ASSERT_EQ(wire::write(hand, hand_bytes), wire::HandMessage::kSize);
  const auto hand_back = wire::read_hand(hand_bytes);
  ASSERT_TRUE(hand_back);
  EXPECT_EQ(hand_back->time_ns, 42);
  EXPECT_EQ(hand_back->hand, wire::kLeftHand);
  EXPECT_FLOAT_EQ(hand_back->grip, 0.75f);
  EXPECT_FLOAT_EQ(hand_back->position[2], -0.3f);
  for (auto broken : {hand_at(1, {0, 0, 0}, 1.5f), hand_at(1, {0, 0, 0}, std::nanf("")),
                      hand_at(1, {INFINITY, 0, 0}, 0), hand_at(1, {0, 0, 0}, 0, 3)}) {
    wire::write(broken, hand_bytes);
    EXPECT_FALSE(wire::read_hand(hand_bytes));
  }
  wire::HandMessage zero_rotation = hand;
  zero_rotation.orientation[3] = 0;
  wire::write(zero_rotation, hand_bytes);
  EXPECT_FALSE(wire::read_hand(hand_bytes));
  EXPECT_FALSE(wire::read_hand(std::span(hand_bytes.data(), hand_bytes.size() - 1)));

  // A full state round trips byte for byte.
  Room room("lab", RoomOptions{.object_spawns = {kSpawn, kSpawn + glm::vec3(1, 0, 0)}});
  std::vector<RoomSeat> seats;
  for (size_t i = 0; i < wire::kMaxRoomMembers; ++i)
    seats.push_back(room.join("user-" + std::to_string(i), 100));
  room.update_hand(seats[3], hand_at(1, kSpawn, 1.0f), 200);
  wire::RoomStateMessage state;
  room.state_for(seats[2].slot, 300, state);
  EXPECT_EQ(state.member_count, wire::kMaxRoomMembers);
  EXPECT_EQ(state.object_count, 2);
  EXPECT_EQ(state.event_count, wire::kMaxRoomEvents);  // 9 events so far: the newest 8
  EXPECT_EQ(state.events[0].seq, 2u);
  EXPECT_EQ(state.events[7].kind, wire::RoomEventKind::kGrab);
  EXPECT_EQ(state.objects[0].holder_slot, seats[3].slot);
  std::array<uint8_t, wire::RoomStateMessage::kMaxSize> bytes{}, again{};
  const size_t n = wire::write(state, bytes);
  EXPECT_EQ(n, state.size());
  const auto back = wire::read_room_state(std::span(bytes.data(), n));
  ASSERT_TRUE(back);
  EXPECT_EQ(wire::write(*back, again), n);
  EXPECT_EQ(std::memcmp(bytes.data(), again.data(), n), 0);
  EXPECT_EQ(wire::user_name_view(back->members[5].user), "user-5");
  EXPECT_EQ(back->your_slot, seats[2].slot);

  auto refused = [&](auto&& spoil) {
    std::array<uint8_t, wire::RoomStateMessage::kMaxSize> copy = bytes;
    size_t size = n;
    spoil(copy, size);
    return !wire::read_room_state(std::span(copy.data(), size));
  };
  EXPECT_TRUE(refused([](auto&, size_t& size) { --size; }));
  EXPECT_TRUE(refused([](auto& b, size_t&) { b[17] = uint8_t(wire::kMaxRoomMembers + 1); }));  // members
  EXPECT_TRUE(refused([](auto& b, size_t&) { b[16] = 9; }));                                   // your slot
  EXPECT_TRUE(refused([](auto& b, size_t&) { b[20] = 8; }));                                   // a slot
  EXPECT_TRUE(refused([](auto& b, size_t&) { b[20 + 2] = 0xC3; }));      // a name cut inside a character
  EXPECT_TRUE(refused([](auto& b, size_t&) { b[20 + 2 + 20] = 'x'; }));  // bytes after the NUL
  const size_t first_event = 20 + 8 * 34 + 2 * 30;
  EXPECT_TRUE(refused([&](auto& b, size_t&) { b[first_event + 4] = 5; }));    // event kind
  EXPECT_TRUE(refused([&](auto& b, size_t&) { b[first_event + 39] += 1; }));  // a gap in the sequence
  EXPECT_TRUE(refused([&](auto& b, size_t&) {
    const float nan = std::nanf("");
    std::memcpy(&b[20 + 8 * 34 + 2], &nan, 4);  // an object position
  }));
}

TEST(RoomMessages, long_names_are_cut_between_characters) {
  std::string name;
  for (int i = 0; i < 30; ++i) name += "\xC3\xA9";  // é
  const wire::UserName cut = wire::make_user_name(name);
  EXPECT_EQ(wire::user_name_view(cut).size(), 22u);  // 11 characters: a 12th would pass 23 bytes
  EXPECT_EQ(wire::user_name_view(wire::make_user_name("ok\xFFnot")), "ok");
}

TEST(Room, seats_members_in_free_slots_and_refuses_a_ninth) {
  Room room("lab");
  std::vector<RoomSeat> seats;
  for (size_t i = 0; i < wire::kMaxRoomMembers; ++i) seats.push_back(room.join("u" + std::to_string(i), 1));
  EXPECT_THROW(room.join("late", 2), Error);
  room.leave(seats[3], 3);
  room.leave(seats[3], 3);  // idempotent
  EXPECT_EQ(room.members(), wire::kMaxRoomMembers - 1);
  const RoomSeat next = room.join("next", 4);
  EXPECT_EQ(next.slot, seats[3].slot);
  EXPECT_NE(next.token, seats[3].token);
  // The old seat's late messages do not move the new member's hand.
  room.update_hand(seats[3], hand_at(10, {5, 5, 5}, 0), 5);
  std::array<DynamicDraw, Room::kMaxDraws> draws{};
  uint64_t version = 0;
  const size_t without_hands = room.draws_for(0, draws, version);
  room.update_hand(next, hand_at(10, {5, 5, 5}, 0), 5);
  EXPECT_EQ(room.draws_for(0, draws, version), without_hands + 1);
}

TEST(Room, the_viewer_sees_the_others_heads_all_tracked_hands_and_the_object) {
  Room room("lab");
  const RoomSeat a = room.join("alice", 1), b = room.join("bob", 1);
  room.update_head(a, Pose{.position = {0, 1.6f, 0}});
  room.update_head(b, Pose{.position = {2, 1.6f, 0}});
  room.update_hand(a, hand_at(1, {0.2f, 1.2f, -0.3f}, 0), 2);
  std::array<DynamicDraw, Room::kMaxDraws> draws{};
  uint64_t version = 0;
  const size_t n = room.draws_for(a.slot, draws, version);
  ASSERT_EQ(n, 2u + 1u + 1u);  // alice's own hand, bob's head and visor, the object (by slot, then objects)
  EXPECT_EQ(draws[0].material, avatar_material(a.slot));
  EXPECT_FLOAT_EQ(draws[0].model[3][0], 0.2f);
  EXPECT_EQ(draws[1].material, avatar_material(b.slot));
  EXPECT_FLOAT_EQ(draws[1].model[3][0], 2.0f);
  EXPECT_EQ(draws[2].material, BuiltinMaterial::kVisor);
  EXPECT_LT(draws[2].model[3][2], -0.1f);  // on the face: -Z is forward
  EXPECT_EQ(draws[3].material, BuiltinMaterial::kSharedObject);
  EXPECT_EQ(version, room.version());
}

TEST(Room, a_grab_moves_the_object_with_the_hand_and_it_stays_where_it_is_let_go) {
  Room room("lab");
  const RoomSeat a = room.join("alice", 1);
  // A grip out of reach grabs nothing.
  room.update_hand(a, hand_at(1, kSpawn + glm::vec3(0.5f, 0, 0), 1.0f), 2);
  EXPECT_EQ(holder(room), wire::kNoSlot);
  room.update_hand(a, hand_at(2, kSpawn + glm::vec3(0.15f, 0, 0), 0.0f), 3);
  // Within reach (15 cm from the centre of a 20 cm cube): the grip's rising edge grabs, with the offset kept.
  const uint64_t before = room.version();
  room.update_hand(a, hand_at(3, kSpawn + glm::vec3(0.15f, 0, 0), 0.9f), 4);
  EXPECT_EQ(holder(room), a.slot);
  room.update_hand(a, hand_at(4, kSpawn + glm::vec3(-0.35f, 0.2f, 0), 0.4f), 5);  // above the release level
  EXPECT_NEAR(glm::distance(object_position(room), kSpawn + glm::vec3(-0.5f, 0.2f, 0)), 0.0f, 1e-5f);
  EXPECT_GT(room.version(), before);
  room.update_hand(a, hand_at(5, kSpawn + glm::vec3(-0.35f, 0.2f, 0), 0.1f), 6);
  EXPECT_EQ(holder(room), wire::kNoSlot);
  room.update_hand(a, hand_at(6, {0, 2, 0}, 0.0f), 7);
  EXPECT_NEAR(glm::distance(object_position(room), kSpawn + glm::vec3(-0.5f, 0.2f, 0)), 0.0f, 1e-5f);
  EXPECT_EQ(event_kinds(room), (std::vector{wire::RoomEventKind::kJoin, wire::RoomEventKind::kGrab,
                                            wire::RoomEventKind::kRelease}));
}

TEST(Room, the_first_grab_wins_and_others_cannot_take_a_held_object) {
  Room room("lab");
  const RoomSeat a = room.join("alice", 1), b = room.join("bob", 1);
  room.update_hand(a, hand_at(1, kSpawn, 1.0f), 2);
  room.update_hand(b, hand_at(1, kSpawn + glm::vec3(0.05f, 0, 0), 1.0f), 2);
  EXPECT_EQ(holder(room), a.slot);
  EXPECT_EQ(room.counters().grabs_refused, 1u);
  // Alice's other hand cannot take it either: one hand holds an object.
  room.update_hand(a, hand_at(1, kSpawn, 1.0f, wire::kLeftHand), 2);
  EXPECT_EQ(room.counters().grabs_refused, 2u);
  // Bob keeps gripping while alice moves it: he does not get it until he grips again after the release.
  room.update_hand(a, hand_at(2, kSpawn + glm::vec3(0, 0.1f, 0), 1.0f), 3);
  room.update_hand(a, hand_at(3, kSpawn + glm::vec3(0, 0.1f, 0), 0.0f), 4);
  room.update_hand(b, hand_at(2, kSpawn + glm::vec3(0, 0.1f, 0), 1.0f), 5);
  EXPECT_EQ(holder(room), wire::kNoSlot);
  room.update_hand(b, hand_at(3, kSpawn + glm::vec3(0, 0.1f, 0), 0.0f), 6);
  room.update_hand(b, hand_at(4, kSpawn + glm::vec3(0, 0.1f, 0), 1.0f), 7);
  EXPECT_EQ(holder(room), b.slot);
}

TEST(Room, losing_tracking_or_leaving_lets_go_in_place_and_reordered_hands_are_ignored) {
  Room room("lab");
  const RoomSeat a = room.join("alice", 1);
  room.update_hand(a, hand_at(10, kSpawn, 1.0f), 2);
  room.update_hand(a, hand_at(11, kSpawn + glm::vec3(0.3f, 0, 0), 1.0f), 3);
  room.update_hand(a, hand_at(9, kSpawn + glm::vec3(-3, 0, 0), 1.0f), 4);  // older: ignored
  EXPECT_EQ(room.counters().stale_hands, 1u);
  EXPECT_NEAR(object_position(room).x, 0.3f, 1e-5f);
  room.update_hand(a, hand_at(12, kSpawn + glm::vec3(0.4f, 0, 0), 1.0f, wire::kRightHand, false), 5);
  EXPECT_EQ(holder(room), wire::kNoSlot);
  EXPECT_NEAR(object_position(room).x, 0.3f, 1e-5f);  // where the hand was last seen holding it

  room.update_hand(a, hand_at(13, kSpawn + glm::vec3(0.3f, 0, 0), 0.0f), 6);
  room.update_hand(a, hand_at(14, kSpawn + glm::vec3(0.3f, 0, 0), 1.0f), 7);
  room.update_hand(a, hand_at(15, kSpawn + glm::vec3(0.6f, 0, 0), 1.0f), 8);
  room.leave(a, 9);
  EXPECT_EQ(holder(room), wire::kNoSlot);
  EXPECT_NEAR(object_position(room).x, 0.6f, 1e-5f);
  EXPECT_EQ(room.empty_since_ns(), 9);
  const auto kinds = event_kinds(room);
  ASSERT_GE(kinds.size(), 2u);
  EXPECT_EQ(kinds[kinds.size() - 2], wire::RoomEventKind::kRelease);
  EXPECT_EQ(kinds.back(), wire::RoomEventKind::kLeave);
}

TEST(Room, a_returning_user_finds_the_room_as_it_was_left_until_it_is_forgotten) {
  RoomRegistry rooms(60.0);
  auto room = rooms.room("lab");
  const RoomSeat a = room->join("alice", 1);
  room->update_hand(a, hand_at(1, kSpawn, 1.0f), 2);
  room->update_hand(a, hand_at(2, kSpawn + glm::vec3(1, 0, 0), 0.0f), 3);  // let go at once: no move
  room->update_hand(a, hand_at(3, kSpawn, 1.0f), 4);
  room->update_hand(a, hand_at(4, kSpawn + glm::vec3(1, 0, 0), 1.0f), 5);
  room->leave(a, 1'000'000'000);
  room.reset();
  rooms.forget_idle(30'000'000'000);  // 29 s empty: kept
  ASSERT_EQ(rooms.size(), 1u);
  auto again = rooms.room("lab");
  const RoomSeat back = again->join("alice", 31'000'000'000);
  wire::RoomStateMessage state;
  again->state_for(back.slot, 0, state);
  EXPECT_NEAR(state.objects[0].position[0], 1.0f, 1e-5f);
  EXPECT_EQ(state.member_count, 1);
  again->leave(back, 32'000'000'000);
  again.reset();
  rooms.forget_idle(93'000'000'000);  // 61 s empty: forgotten, the next one starts afresh
  EXPECT_EQ(rooms.size(), 0u);
  EXPECT_NEAR(object_position(*rooms.room("lab")).x, kSpawn.x, 1e-6f);
}

}  // namespace
}  // namespace kairo
