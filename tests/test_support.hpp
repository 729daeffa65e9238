#pragma once
// Shared by the test binaries: one validated Vulkan device per process, paths to test data, and a
// one-call render helper. Every test that renders checks that validation stayed silent.
#include <gtest/gtest.h>
#include <filesystem>
#include <memory>

#include "core/image_io.hpp"
#include "renderer/stereo_renderer.hpp"

namespace kairo::test {

std::shared_ptr<VulkanContext> vulkan();             // validation on; created on first use
std::filesystem::path scene_path(const char* name);  // the project's generated scenes
std::filesystem::path assimp_models();               // Debian's assimp-testmodels
std::filesystem::path temp_dir();                    // fresh per call, under the system temp dir

// Renders one stereo frame of `scene` and returns the 2W x H side-by-side RGBA image.
// Full detail unless `lod_pixel_error` > 0 (RendererConfig::lod_pixel_error): golden images check shading.
ImageRgba8 render_once(const std::shared_ptr<GpuScene>& scene, int eye_width, int eye_height,
                       const StereoView& view, MultiviewMode mode = MultiviewMode::kAuto,
                       float lod_pixel_error = 0.0f);
StereoView head_view(const Pose& head, float ipd = kDefaultIpdMetres, float fov_degrees = 90.0f);
// A head pose at `position` looking at `target` (+Y up).
Pose look_at(const glm::vec3& position, const glm::vec3& target);

// Fails the current test if the device reported validation messages since the last call.
void expect_validation_clean();

}  // namespace kairo::test
