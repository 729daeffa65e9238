// Renders fixed poses of the project scenes and of assimp's test models and compares them with the reference
// PNGs in tests/golden. Tolerance: PSNR >= 40 dB and at most 0.5 % of pixels off by more than 24 levels,
// which absorbs differences between CPU vector widths in lavapipe but not a moved object or a changed
// material. KAIRO_UPDATE_GOLDEN=1 rewrites the references (review the images before committing them).
#include <gtest/gtest.h>
#include <cstdlib>

#include "tests/test_support.hpp"

namespace kairo {
namespace {

struct GoldenCase {
  const char* name;
  std::filesystem::path scene;
  Pose head;
};

void check_golden(const GoldenCase& c) {
  SCOPED_TRACE(c.name);
  auto scene = GpuScene::upload(test::vulkan(), load_scene(c.scene));
  const ImageRgba8 image = test::render_once(scene, 160, 160, test::head_view(c.head));
  const auto reference =
      std::filesystem::path(KAIRO_SOURCE_DIR) / "tests/golden" / (std::string(c.name) + ".png");
  const char* update = std::getenv("KAIRO_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    // Rewriting is not a pass, nor a skip that a count can hide: the run fails, naming the file, until the
    // new reference has been looked at and the tests run again without KAIRO_UPDATE_GOLDEN.
    write_png(reference, image.width, image.height, image.pixels);
    FAIL() << "reference rewritten (KAIRO_UPDATE_GOLDEN=1): " << reference
           << "; look at it, commit it, and run the tests again without KAIRO_UPDATE_GOLDEN";
  }
  ASSERT_TRUE(std::filesystem::exists(reference)) << reference;
  const ImageDifference d = compare_images(image, read_png(reference), 24);
  EXPECT_GE(d.psnr_db, 40.0);
  EXPECT_LE(d.fraction_over, 0.005);
  if (d.psnr_db < 40.0 || d.fraction_over > 0.005) {
    const auto actual = std::filesystem::temp_directory_path() / (std::string(c.name) + ".actual.png");
    write_png(actual, image.width, image.height, image.pixels);
    ADD_FAILURE() << "PSNR " << d.psnr_db << " dB, " << d.fraction_over * 100
                  << "% pixels over; actual image: " << actual;
  }
  test::expect_validation_clean();
}

// Frames a model: 2.2 bounding radii away, slightly above, looking at its centre.
Pose framing(const std::filesystem::path& model, float yaw_degrees) {
  const SceneData s = load_scene(model);
  const glm::vec3 centre = (s.bounds_min + s.bounds_max) * 0.5f;
  const float radius = glm::length(s.bounds_max - s.bounds_min) * 0.5f;
  const glm::vec3 direction =
      glm::angleAxis(glm::radians(yaw_degrees), glm::vec3(0, 1, 0)) * glm::normalize(glm::vec3(0, 0.35f, 1));
  return test::look_at(centre + direction * radius * 2.2f, centre);
}

TEST(GoldenImage, vr_room_standing) {
  check_golden({"vr_room_standing", test::scene_path("vr-room.glb"), Pose{.position = {0, 1.6f, 0}}});
}

TEST(GoldenImage, vr_room_looking_at_the_table_and_brick_wall) {
  check_golden({"vr_room_table", test::scene_path("vr-room.glb"),
                test::look_at({1.2f, 1.5f, -0.5f}, {-1.5f, 0.8f, -3.0f})});
}

TEST(GoldenImage, stress_scene) {
  check_golden({"stress", test::scene_path("stress.glb"), test::look_at({0, 4.0f, 3.0f}, {0, 0.5f, -8.0f})});
}

TEST(GoldenImage, assimp_gltf_textured_box) {
  const auto model = test::assimp_models() / "glTF2/BoxTextured-glTF-Binary/BoxTextured.glb";
  check_golden({"assimp_box_textured", model, framing(model, 30)});
}

TEST(GoldenImage, assimp_collada_duck) {
  const auto model = test::assimp_models() / "Collada/duck.dae";
  check_golden({"assimp_duck", model, framing(model, -40)});
}

TEST(GoldenImage, assimp_obj_spider) {
  const auto model = test::assimp_models() / "OBJ/spider.obj";
  check_golden({"assimp_spider", model, framing(model, 20)});
}

}  // namespace
}  // namespace kairo
