#pragma once
// Head and eye poses in OpenXR conventions: right-handed, +Y up, -Z forward, metres, unit quaternions.
#include <array>
#include <glm/glm.hpp>
#include <glm/gtc/quaternion.hpp>

namespace kairo {

// Field of view as OpenXR's XrFovf: angles in radians from the view axis; left and down are negative.
struct Fov {
  float left = 0;
  float right = 0;
  float up = 0;
  float down = 0;
};

struct Pose {
  glm::vec3 position{0.0f};
  glm::quat orientation{1.0f, 0.0f, 0.0f, 0.0f};  // glm order: w, x, y, z
};

struct EyeView {
  Pose pose;
  Fov fov;
};

enum Eye : int { kLeftEye = 0, kRightEye = 1 };
using StereoView = std::array<EyeView, 2>;

constexpr float kDefaultIpdMetres = 0.063f;
constexpr float kDefaultFovDegrees = 90.0f;

// A symmetric FOV whose full horizontal and vertical angle is `full_degrees`.
Fov symmetric_fov(float full_degrees);

// Eyes sit at -ipd/2 and +ipd/2 along the head's local +X axis and share its orientation.
StereoView stereo_view_from_head(const Pose& head, float ipd, const std::array<Fov, 2>& fovs);

// Throws kairo::Error (invalid input) naming the problem: non-finite values, zero quaternion, bad FOV.
// Returns the pose with its quaternion normalised.
Pose validated_pose(const Pose& pose);
Fov validated_fov(const Fov& fov);

// A pose from the wire's float arrays: position xyz, orientation xyzw (OpenXR order), normalised. For values
// the message parsers have already checked (finite, non-zero quaternion).
Pose pose_from_arrays(const float position[3], const float orientation_xyzw[4]);

// World-to-eye transform.
glm::mat4 view_matrix(const Pose& eye);

// Vulkan clip space (y down, depth 0..1), reverse-Z with an infinite far plane: depth = near / distance.
glm::mat4 projection_matrix(const Fov& fov, float near_plane);

// Pixel coordinates (x right, y down, pixel centres at +0.5) where a world point projects in an eye image.
glm::vec2 project_to_pixel(const EyeView& eye, const glm::vec3& world_point, int width, int height);

}  // namespace kairo
