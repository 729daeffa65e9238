// The replica's picture of the fleet (control-plane/placement_snapshot.hpp): which node it offers first, how
// it counts its own placements between reads, and when it offers none (so the database chooses).
#include "control-plane/placement_snapshot.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace kairo::control {
namespace {

constexpr int64_t kMaxAge = 1'000'000'000;

PlacementSnapshot::Node node(int64_t id, int active, int capacity, double load = 0) {
  return {.id = id,
          .active = active,
          .capacity = capacity,
          .load = load,
          .webrtc = false,
          .scenes = {"vr-room"},
          .codecs = {"h264"},
          .cached_scenes = {}};
}

// A picture read at `at_ns` (the pictures hold a mutex: handed out by pointer).
std::unique_ptr<PlacementSnapshot> read(std::vector<PlacementSnapshot::Node> nodes,
                                        std::unordered_map<std::string, std::string> catalogue = {},
                                        int64_t at_ns = 0) {
  auto snapshot = std::make_unique<PlacementSnapshot>(kMaxAge);
  snapshot->install({.nodes = std::move(nodes), .catalogue = std::move(catalogue)}, at_ns,
                    snapshot->generation());
  return snapshot;
}

const PlacementWant kRoom{.scene = "vr-room", .codec = "h264"};

TEST(PlacementSnapshot, offers_the_least_filled_then_least_loaded_then_lowest_id_as_the_database_orders) {
  // 1/4 filled, 2/8 filled (same ratio, more load), 0/4 filled with load, 0/4 filled without.
  auto snapshot = read({node(1, 1, 4), node(2, 2, 8, 0.5), node(3, 0, 4, 0.9), node(4, 0, 4, 0.1)});
  EXPECT_EQ(snapshot->choose(kRoom, 0), 4);
  EXPECT_EQ(snapshot->choose(kRoom, 0), 3);  // 4 is 1/4 filled now: 3 (0/4) comes first
  EXPECT_EQ(snapshot->choose(kRoom, 0), 1);  // a quarter filled each: the least loaded (load 0)
  EXPECT_EQ(snapshot->choose(kRoom, 0), 4);  // 1 is half filled now; of the rest, 4 has the least load
}

TEST(PlacementSnapshot, counts_its_own_placements_so_it_spreads_them_and_never_offers_a_full_node) {
  auto snapshot = read({node(1, 0, 3), node(2, 0, 3), node(3, 0, 2)});
  std::map<int64_t, int> placed;
  for (int i = 0; i < 8; ++i) {
    const auto chosen = snapshot->choose(kRoom, 0);
    ASSERT_TRUE(chosen.has_value()) << i;
    ++placed[*chosen];
  }
  EXPECT_EQ(placed, (std::map<int64_t, int>{{1, 3}, {2, 3}, {3, 2}}));
  EXPECT_FALSE(snapshot->choose(kRoom, 0).has_value());  // full as far as it knows: the database decides
}

TEST(PlacementSnapshot, a_node_that_missed_is_not_offered_again_until_the_next_read) {
  auto snapshot = read({node(1, 0, 4), node(2, 1, 4)});
  ASSERT_EQ(snapshot->choose(kRoom, 0), 1);
  snapshot->missed(1);  // full or held after all
  EXPECT_EQ(snapshot->choose(kRoom, 0), 2);
  EXPECT_EQ(snapshot->choose(kRoom, 0), 2);
}

TEST(PlacementSnapshot, offers_only_nodes_with_the_scene_the_codec_and_the_transport) {
  auto webrtc = node(3, 0, 4);
  webrtc.webrtc = true;
  webrtc.scenes = {"stress"};
  auto hevc = node(2, 0, 4);
  hevc.codecs = {"hevc"};
  auto snapshot = read({node(1, 3, 4), hevc, webrtc});
  EXPECT_EQ(snapshot->choose(kRoom, 0), 1);
  EXPECT_EQ(snapshot->choose({.scene = "vr-room", .codec = "hevc"}, 0), 2);
  EXPECT_EQ(snapshot->choose({.scene = "stress", .codec = "h264", .webrtc = true}, 0), 3);
  EXPECT_FALSE(snapshot->choose({.scene = "vr-room", .codec = "h264", .webrtc = true}, 0).has_value());
  EXPECT_FALSE(snapshot->choose({.scene = "gallery", .codec = "h264"}, 0).has_value());
}

TEST(PlacementSnapshot, a_catalogue_scene_goes_to_any_node_holders_of_its_newest_version_first) {
  auto holder = node(2, 2, 4);
  holder.cached_scenes = {"old-hash", "new-hash"};
  auto old_holder = node(1, 0, 4);
  old_holder.cached_scenes = {"old-hash"};
  auto snapshot = read({old_holder, holder, node(3, 0, 4)}, {{"gallery", "new-hash"}});
  const PlacementWant gallery{.scene = "gallery", .codec = "h264"};
  EXPECT_EQ(snapshot->choose(gallery, 0), 2);
  EXPECT_EQ(snapshot->choose(gallery, 0), 2);  // 4/4 now
  EXPECT_EQ(snapshot->choose(gallery, 0), 1);  // nobody else holds it: least filled, lowest id
}

TEST(PlacementSnapshot, offers_nothing_when_never_read_too_old_or_dropped) {
  PlacementSnapshot never(kMaxAge);
  EXPECT_TRUE(never.refresh_due(0));
  EXPECT_FALSE(never.usable(0));
  EXPECT_FALSE(never.choose(kRoom, 0).has_value());

  auto snapshot = read({node(1, 0, 4)}, {}, 1'000);
  EXPECT_TRUE(snapshot->usable(1'000 + kMaxAge));
  EXPECT_FALSE(snapshot->usable(1'001 + kMaxAge));
  EXPECT_FALSE(snapshot->choose(kRoom, 2'000 + kMaxAge).has_value());

  snapshot->drop();
  EXPECT_TRUE(snapshot->refresh_due(1'000));
  EXPECT_FALSE(snapshot->usable(1'000));
  EXPECT_FALSE(snapshot->choose(kRoom, 1'000).has_value());
}

TEST(PlacementSnapshot, is_read_again_from_half_its_age_and_offers_nodes_meanwhile) {
  auto snapshot = read({node(1, 0, 4)}, {}, 1'000);
  EXPECT_FALSE(snapshot->refresh_due(1'000 + kMaxAge / 2));
  EXPECT_TRUE(snapshot->refresh_due(1'001 + kMaxAge / 2));
  // Until the read lands, placements go on from the picture they have.
  EXPECT_TRUE(snapshot->usable(1'001 + kMaxAge / 2));
  EXPECT_EQ(snapshot->choose(kRoom, 1'001 + kMaxAge / 2), 1);
}

TEST(PlacementSnapshot, a_read_overtaken_by_a_drop_is_thrown_away) {
  PlacementSnapshot snapshot(kMaxAge);
  const uint64_t before = snapshot.generation();
  snapshot.drop();  // a change announced while the read was on its way: the read may predate it
  snapshot.install({.nodes = {node(1, 0, 4)}, .catalogue = {}}, 0, before);
  EXPECT_FALSE(snapshot.usable(0));
  snapshot.install({.nodes = {node(1, 0, 4)}, .catalogue = {}}, 0, snapshot.generation());
  EXPECT_EQ(snapshot.choose(kRoom, 0), 1);
}

}  // namespace
}  // namespace kairo::control
