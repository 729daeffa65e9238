// The node's scenes on the device within a memory budget (node/scene_residency.hpp): loaded once, scenes
// no session uses evicted least recently used first, a scene that cannot fit refused with the reason.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "node/scene_residency.hpp"
#include "renderer/gpu_scene.hpp"
#include "renderer/scene_data.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

std::string refusal(SceneResidency& residency, const std::filesystem::path& file) {
  try {
    residency.acquire(file);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(SceneResidency, scenes_in_use_stay_unused_ones_make_room_and_what_cannot_fit_is_refused) {
  const auto room = test::scene_path("vr-room.glb");
  const auto box = test::assimp_models() / "glTF2/BoxTextured-glTF-Binary/BoxTextured.glb";
  const auto duck = test::assimp_models() / "Collada/duck.dae";
  const uint64_t room_bytes = GpuScene::device_bytes(load_scene(room)),
                 box_bytes = GpuScene::device_bytes(load_scene(box)),
                 duck_bytes = GpuScene::device_bytes(load_scene(duck));
  ASSERT_GT(room_bytes, duck_bytes);
  ASSERT_GT(duck_bytes, box_bytes);
  // Room for the VR room and the box, not for the duck beside them.
  SceneResidency residency(room_bytes + duck_bytes, test::vulkan());
  std::shared_ptr<GpuScene> in_use = residency.acquire(room);
  EXPECT_EQ(residency.acquire(room), in_use) << "loaded once";
  std::shared_ptr<GpuScene> box_session = residency.acquire(box);
  EXPECT_EQ(residency.resident_scenes(), 2u);
  EXPECT_EQ(residency.resident_bytes(), room_bytes + box_bytes);

  // Both in use: the duck does not fit, and nothing changed.
  const std::string why = refusal(residency, duck);
  EXPECT_NE(why.find("duck.dae"), std::string::npos) << why;
  EXPECT_NE(why.find("does not fit"), std::string::npos) << why;
  EXPECT_EQ(residency.resident_scenes(), 2u);
  EXPECT_EQ(residency.evictions(), 0u);

  // The box's session ends: the box makes room, the VR room (in use) stays.
  box_session.reset();
  std::shared_ptr<GpuScene> duck_session = residency.acquire(duck);
  EXPECT_EQ(residency.evictions(), 1u);
  EXPECT_EQ(residency.resident_bytes(), room_bytes + duck_bytes);
  EXPECT_EQ(residency.acquire(room), in_use) << "the scene in use was not evicted";

  // Larger than the whole budget.
  SceneResidency small(box_bytes, test::vulkan());
  const std::string too_big = refusal(small, room);
  EXPECT_NE(too_big.find("more than the node's scene budget"), std::string::npos) << too_big;
  EXPECT_EQ(small.resident_scenes(), 0u);
  test::expect_validation_clean();
}

}  // namespace
}  // namespace kairo
