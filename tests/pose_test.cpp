#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/pose.hpp"

namespace kairo {
namespace {

TEST(Pose, eyes_sit_half_an_ipd_either_side_along_the_heads_x_axis) {
  const Pose head{.position = {1, 1.6f, 2},
                  .orientation = glm::angleAxis(glm::radians(90.0f), glm::vec3(0, 1, 0))};
  const StereoView view = stereo_view_from_head(head, 0.064f, {symmetric_fov(90), symmetric_fov(90)});
  // Turned 90 degrees left, the head's +X (right) points to world -Z.
  EXPECT_NEAR(view[kLeftEye].pose.position.z, 2.032f, 1e-5f);
  EXPECT_NEAR(view[kRightEye].pose.position.z, 1.968f, 1e-5f);
  EXPECT_NEAR(view[kLeftEye].pose.position.x, 1.0f, 1e-5f);
  EXPECT_FLOAT_EQ(glm::distance(view[0].pose.position, view[1].pose.position), 0.064f);
}

TEST(Pose, projection_maps_the_fov_edges_to_the_image_edges) {
  const EyeView eye{.pose = {}, .fov = Fov{.left = -0.7f, .right = 0.5f, .up = 0.6f, .down = -0.4f}};
  // A point on the left edge of the FOV, one metre ahead.
  const glm::vec2 left = project_to_pixel(eye, {std::tan(-0.7f), 0, -1}, 100, 100);
  const glm::vec2 top = project_to_pixel(eye, {0, std::tan(0.6f), -1}, 100, 100);
  EXPECT_NEAR(left.x, 0.0f, 1e-3f);
  EXPECT_NEAR(top.y, 0.0f, 1e-3f);  // up is the top row: Vulkan's y points down
}

TEST(Pose, reverse_z_puts_the_near_plane_at_one_and_infinity_at_zero) {
  const glm::mat4 p = projection_matrix(symmetric_fov(90), 0.1f);
  const glm::vec4 near_point = p * glm::vec4(0, 0, -0.1f, 1);
  const glm::vec4 far_point = p * glm::vec4(0, 0, -1e6f, 1);
  EXPECT_NEAR(near_point.z / near_point.w, 1.0f, 1e-6f);
  EXPECT_NEAR(far_point.z / far_point.w, 0.0f, 1e-6f);
}

TEST(Pose, view_matrix_inverts_the_eye_pose) {
  const Pose eye{.position = {0.3f, 1.7f, -2},
                 .orientation = glm::normalize(glm::quat(0.9f, 0.1f, 0.4f, -0.1f))};
  const glm::vec4 origin = view_matrix(eye) * glm::vec4(eye.position, 1);
  const glm::vec4 ahead =
      view_matrix(eye) * glm::vec4(eye.position + eye.orientation * glm::vec3(0, 0, -2), 1);
  EXPECT_NEAR(glm::length(glm::vec3(origin)), 0.0f, 1e-5f);
  EXPECT_NEAR(ahead.z, -2.0f, 1e-5f);
}

TEST(Pose, invalid_poses_are_refused_with_a_reason) {
  EXPECT_THROW(validated_pose(Pose{.position = {NAN, 0, 0}}), Error);
  EXPECT_THROW(validated_pose(Pose{.orientation = glm::quat(0, 0, 0, 0)}), Error);
  EXPECT_THROW(validated_pose(Pose{.orientation = glm::quat(INFINITY, 0, 0, 0)}), Error);
  try {
    validated_pose(Pose{.orientation = glm::quat(0, 0, 0, 0)});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("zero length"), std::string::npos);
    EXPECT_EQ(e.exit_code(), 2);
  }
  const Pose normalised = validated_pose(Pose{.orientation = glm::quat(2, 0, 0, 0)});
  EXPECT_FLOAT_EQ(normalised.orientation.w, 1.0f);
}

TEST(Pose, empty_or_extreme_fov_is_refused) {
  EXPECT_THROW(validated_fov(Fov{.left = 0.5f, .right = -0.5f, .up = 0.5f, .down = -0.5f}), Error);
  EXPECT_THROW(validated_fov(Fov{.left = -1.6f, .right = 0.5f, .up = 0.5f, .down = -0.5f}), Error);
  EXPECT_NO_THROW(validated_fov(symmetric_fov(100)));
}

}  // namespace
}  // namespace kairo
