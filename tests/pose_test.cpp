#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/names.hpp"
#include "core/pose.hpp"
#include "core/session_shape.hpp"

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

namespace kairo {
namespace {

TEST(SessionShape, one_set_of_rules_for_every_component) {
  const SessionShape good{
      .scene = "vr-room", .eye_width = 256, .eye_height = 128, .fps = 90, .codec = "h264"};
  EXPECT_FALSE(session_shape_problem(good));
  auto with = [&](auto change) {
    SessionShape s = good;
    change(s);
    const auto problem = session_shape_problem(s);
    return problem ? problem->code : std::string("ok");
  };
  EXPECT_EQ(with([](SessionShape& s) { s.eye_width = 250; }), "invalid_size");  // not a multiple of 8
  EXPECT_EQ(with([](SessionShape& s) { s.eye_height = 8; }), "invalid_size");   // under 16
  EXPECT_EQ(with([](SessionShape& s) { s.eye_width = 8200; }), "invalid_size");
  EXPECT_EQ(with([](SessionShape& s) { s.fps = 0; }), "invalid_fps");
  EXPECT_EQ(with([](SessionShape& s) { s.fps = 241; }), "invalid_fps");
  EXPECT_EQ(with([](SessionShape& s) { s.codec = "av1"; }), "invalid_codec");
  EXPECT_EQ(with([](SessionShape& s) { s.codec = "hevc"; }), "ok");
  EXPECT_EQ(with([](SessionShape& s) { s.scene = std::string("a\0b", 3); }), "invalid_scene");
  EXPECT_EQ(with([](SessionShape& s) { s.room = "lab\n"; }), "invalid_room");
  EXPECT_EQ(with([](SessionShape& s) { s.room = "Café"; }), "ok");
  EXPECT_EQ(with([](SessionShape& s) { s.scene = std::string(257, 'x'); }), "invalid_scene");
}

TEST(Names, control_characters_are_refused_and_escaped_in_logs) {
  EXPECT_FALSE(name_problem("alice", 64));
  EXPECT_FALSE(name_problem("東京 room", 64));
  EXPECT_TRUE(name_problem(std::string("bob\0zz", 6), 64));
  EXPECT_TRUE(name_problem("a\x1b[31m", 64));
  EXPECT_TRUE(name_problem("a\xc2\x85", 64));      // NEL (C1)
  EXPECT_TRUE(name_problem("a\xe2\x80\xae", 64));  // right-to-left override
  EXPECT_TRUE(name_problem("a\xc3", 64));          // truncated UTF-8
  EXPECT_TRUE(name_problem("a\xc0\x80", 64));      // overlong NUL
  EXPECT_TRUE(name_problem(" padded", 64));
  EXPECT_TRUE(name_problem("", 64));
  EXPECT_TRUE(name_problem("abcd", 3));
  EXPECT_EQ(escape_for_log("room\n[error] forged"), "room\\x0a[error] forged");
  EXPECT_EQ(escape_for_log("a\x1b[31mb"), "a\\x1b[31mb");
  EXPECT_EQ(escape_for_log("back\\slash"), "back\\\\slash");
  EXPECT_EQ(escape_for_log("Zürich"), "Zürich");
}

}  // namespace
}  // namespace kairo
