#include "tests/test_support.hpp"

#include <unistd.h>
#include <atomic>
#include <glm/gtc/matrix_transform.hpp>

namespace kairo::test {
namespace {
uint64_t last_validation_count = 0;
}

std::shared_ptr<VulkanContext> vulkan() {
  static std::shared_ptr<VulkanContext> context =
      VulkanContext::create(VulkanOptions{.gpu = "", .validation = true});
  return context;
}

std::filesystem::path scene_path(const char* name) {
  return std::filesystem::path(KAIRO_SCENE_DIR) / name;
}
std::filesystem::path assimp_models() {
  return "/usr/share/assimp/models";
}

std::filesystem::path temp_dir() {
  static std::atomic<int> counter{0};
  const auto dir = std::filesystem::temp_directory_path() /
                   ("kairo-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

ImageRgba8 render_once(const std::shared_ptr<GpuScene>& scene, int eye_width, int eye_height,
                       const StereoView& view, MultiviewMode mode, float lod_pixel_error) {
  StereoRenderer renderer(scene, RendererConfig{.eye_width = eye_width,
                                                .eye_height = eye_height,
                                                .frames_in_flight = 1,
                                                .nv12 = Nv12Layout::kNone,
                                                .multiview = mode,
                                                .lod_pixel_error = lod_pixel_error});
  renderer.submit(FrameRequest{.frame_id = 1, .view = view, .want_rgba = true});
  const RenderedFrame& frame = renderer.collect();
  ImageRgba8 image{
      .width = 2 * eye_width, .height = eye_height, .pixels = {frame.rgba.begin(), frame.rgba.end()}};
  renderer.release(frame);
  return image;
}

StereoView head_view(const Pose& head, float ipd, float fov_degrees) {
  const Fov fov = symmetric_fov(fov_degrees);
  return stereo_view_from_head(head, ipd, {fov, fov});
}

Pose look_at(const glm::vec3& position, const glm::vec3& target) {
  // glm::lookAt gives world->view; its inverse rotation is the head orientation (-Z forward).
  const glm::mat4 view = glm::lookAt(position, target, glm::vec3(0, 1, 0));
  return Pose{.position = position, .orientation = glm::quat_cast(glm::transpose(glm::mat3(view)))};
}

void expect_validation_clean() {
  const uint64_t now = vulkan()->validation_message_count();
  EXPECT_EQ(now, last_validation_count) << "Vulkan validation reported messages (see the log above)";
  last_validation_count = now;
}

}  // namespace kairo::test
