#include "core/pose.hpp"

#include <cmath>
#include <string>

#include "core/error.hpp"

namespace kairo {

Fov symmetric_fov(float full_degrees) {
  const float half = glm::radians(full_degrees) * 0.5f;
  return Fov{.left = -half, .right = half, .up = half, .down = -half};
}

StereoView stereo_view_from_head(const Pose& head, float ipd, const std::array<Fov, 2>& fovs) {
  StereoView view;
  for (int eye = 0; eye < 2; ++eye) {
    const float side = eye == kLeftEye ? -0.5f : 0.5f;
    view[eye].pose.orientation = head.orientation;
    view[eye].pose.position = head.position + head.orientation * glm::vec3(side * ipd, 0.0f, 0.0f);
    view[eye].fov = fovs[eye];
  }
  return view;
}

namespace {
bool finite(const glm::vec3& v) {
  return std::isfinite(v.x) && std::isfinite(v.y) && std::isfinite(v.z);
}
}  // namespace

Pose validated_pose(const Pose& pose) {
  const glm::quat& q = pose.orientation;
  if (!finite(pose.position)) throw_invalid_input("pose position is not finite");
  if (!std::isfinite(q.x) || !std::isfinite(q.y) || !std::isfinite(q.z) || !std::isfinite(q.w))
    throw_invalid_input("pose quaternion is not finite");
  // The length in double: in float, a component above ~1e19 squares to infinity and the "normalised"
  // quaternion comes out all zeros (found by tests/fuzz/trace_line_fuzzer.cpp: such a line was accepted and
  // its recording could not be read back).
  const double length =
      std::sqrt(double(q.x) * q.x + double(q.y) * q.y + double(q.z) * q.z + double(q.w) * q.w);
  if (length < 1e-6) throw_invalid_input("pose quaternion has zero length");
  if (std::abs(pose.position.x) > 1e6f || std::abs(pose.position.y) > 1e6f ||
      std::abs(pose.position.z) > 1e6f)
    throw_invalid_input("pose position is more than 1000 km from the origin");
  // Idempotent: a quaternion already of unit length (to float precision) is kept bit for bit, so that a pose
  // written to a trace and read back is the very pose (replay reproduces a recorded session's frames).
  if (std::abs(length - 1.0) <= 1e-6) return pose;
  return Pose{.position = pose.position,
              .orientation = glm::quat(float(q.w / length), float(q.x / length), float(q.y / length),
                                       float(q.z / length))};
}

Fov validated_fov(const Fov& fov) {
  const float limit = glm::radians(89.0f);
  for (float angle : {fov.left, fov.right, fov.up, fov.down})
    if (!std::isfinite(angle) || std::abs(angle) > limit)
      throw_invalid_input("field of view angle must be finite and within +-89 degrees");
  if (fov.right <= fov.left || fov.up <= fov.down)
    throw_invalid_input("field of view is empty (right must exceed left, up must exceed down)");
  return fov;
}

glm::mat4 view_matrix(const Pose& eye) {
  const glm::mat4 rotation = glm::mat4_cast(glm::conjugate(eye.orientation));
  glm::mat4 translation(1.0f);
  translation[3] = glm::vec4(-eye.position, 1.0f);
  return rotation * translation;
}

glm::mat4 projection_matrix(const Fov& fov, float near_plane) {
  const float tan_left = std::tan(fov.left);
  const float tan_right = std::tan(fov.right);
  const float tan_up = std::tan(fov.up);
  const float tan_down = std::tan(fov.down);
  const float width = tan_right - tan_left;
  const float height = tan_up - tan_down;
  glm::mat4 m(0.0f);  // glm is column-major: m[column][row]
  m[0][0] = 2.0f / width;
  m[2][0] = (tan_right + tan_left) / width;
  m[1][1] = -2.0f / height;  // Vulkan's framebuffer y points down
  m[2][1] = -(tan_up + tan_down) / height;
  m[3][2] = near_plane;  // z_clip = near, w_clip = -z  =>  depth = near / distance (1 at near, 0 at infinity)
  m[2][3] = -1.0f;
  return m;
}

glm::vec2 project_to_pixel(const EyeView& eye, const glm::vec3& world_point, int width, int height) {
  const glm::vec4 clip =
      projection_matrix(eye.fov, 0.05f) * view_matrix(eye.pose) * glm::vec4(world_point, 1.0f);
  const glm::vec2 ndc = glm::vec2(clip) / clip.w;
  return glm::vec2((ndc.x + 1.0f) * 0.5f * static_cast<float>(width),
                   (ndc.y + 1.0f) * 0.5f * static_cast<float>(height));
}

Pose pose_from_arrays(const float position[3], const float orientation_xyzw[4]) {
  return Pose{.position = glm::vec3(position[0], position[1], position[2]),
              .orientation = glm::normalize(glm::quat(orientation_xyzw[3], orientation_xyzw[0],
                                                      orientation_xyzw[1], orientation_xyzw[2]))};
}

}  // namespace kairo
