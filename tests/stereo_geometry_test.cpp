// A small emissive square at a known place must land in each eye where the projection says: the disparity
// between the eyes is f * IPD / z (f the focal length in pixels), and turning the head moves it as predicted.
#include <gtest/gtest.h>

#include "scenes/project_scenes.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

constexpr int kEye = 512;

// Centroid of the marker's red pixels in one eye of a side-by-side image.
glm::vec2 marker_centroid(const ImageRgba8& image, int eye) {
  double sx = 0, sy = 0, weight = 0;
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < kEye; ++x) {
      const uint8_t* p = &image.pixels[(size_t(y) * image.width + eye * kEye + x) * 4];
      if (p[0] > 200 && p[1] < 100 && p[2] < 100) {
        sx += x + 0.5;
        sy += y + 0.5;
        weight += 1;
      }
    }
  EXPECT_GT(weight, 4) << "marker not visible in eye " << eye;
  return {float(sx / weight), float(sy / weight)};
}

std::shared_ptr<GpuScene> marker_scene(const glm::vec3& centre) {
  const auto path = test::temp_dir() / "marker.glb";
  scenes::write_marker_scene(path, centre, 0.04f * -centre.z);  // about 10 px wide at any depth
  return GpuScene::upload(test::vulkan(), load_scene(path));
}

class StereoGeometry : public ::testing::TestWithParam<float> {};

TEST_P(StereoGeometry, disparity_matches_f_times_ipd_over_depth) {
  const float depth = GetParam();
  const glm::vec3 marker(0.1f, 1.6f, -depth);
  const Pose head{.position = {0, 1.6f, 0}};
  const float ipd = 0.063f;
  const StereoView view = test::head_view(head, ipd, 90.0f);
  const ImageRgba8 image = test::render_once(marker_scene(marker), kEye, kEye, view);
  const glm::vec2 left = marker_centroid(image, kLeftEye), right = marker_centroid(image, kRightEye);

  const float focal_px = float(kEye) / (2.0f * std::tan(glm::radians(45.0f)));
  EXPECT_NEAR(left.x - right.x, focal_px * ipd / depth, 1.0f);
  for (int eye = 0; eye < 2; ++eye) {
    const glm::vec2 expected = project_to_pixel(view[eye], marker, kEye, kEye);
    const glm::vec2 actual = eye == 0 ? left : right;
    EXPECT_NEAR(actual.x, expected.x, 1.0f) << "eye " << eye;
    EXPECT_NEAR(actual.y, expected.y, 1.0f) << "eye " << eye;
  }
  test::expect_validation_clean();
}

INSTANTIATE_TEST_SUITE_P(Depths, StereoGeometry, ::testing::Values(0.5f, 1.0f, 2.0f, 4.0f));

TEST(StereoGeometryYaw, a_known_head_yaw_moves_the_marker_by_the_expected_amount) {
  const glm::vec3 marker(0.0f, 1.6f, -2.0f);
  auto scene = marker_scene(marker);
  const float yaw = glm::radians(12.0f);  // turning left moves the world (and the marker) right in the image
  const Pose ahead{.position = {0, 1.6f, 0}};
  const Pose turned{.position = {0, 1.6f, 0}, .orientation = glm::angleAxis(yaw, glm::vec3(0, 1, 0))};
  const glm::vec2 before =
      marker_centroid(test::render_once(scene, kEye, kEye, test::head_view(ahead)), kLeftEye);
  const ImageRgba8 after_image = test::render_once(scene, kEye, kEye, test::head_view(turned));
  const glm::vec2 after = marker_centroid(after_image, kLeftEye);
  const StereoView turned_view = test::head_view(turned);
  const glm::vec2 expected = project_to_pixel(turned_view[kLeftEye], marker, kEye, kEye);
  EXPECT_NEAR(after.x, expected.x, 1.0f);
  // Roughly f * tan(yaw) for the centred eye: about 54 px at 12 degrees.
  EXPECT_NEAR(after.x - before.x, 256.0f * std::tan(yaw), 3.0f);
  EXPECT_NEAR(after.y, before.y, 1.0f);
  test::expect_validation_clean();
}

}  // namespace
}  // namespace kairo
