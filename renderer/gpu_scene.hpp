#pragma once
// A scene uploaded once to device-local memory (geometry, textures, materials) and shared, read-only,
// by every StereoRenderer of the device: several sessions render one GpuScene.
#include <memory>
#include <string>

#include "renderer/scene_data.hpp"
#include "renderer/vulkan_context.hpp"

namespace kairo {

class GpuScene {
 public:
  static std::shared_ptr<GpuScene> upload(std::shared_ptr<VulkanContext> context, const SceneData& scene);
  // What upload() will take on the device (vertices, indices with the levels of detail, textures with their
  // mip chains), known before uploading: a node decides from it whether a scene fits its budget.
  static uint64_t device_bytes(const SceneData& scene);
  ~GpuScene();
  GpuScene(const GpuScene&) = delete;
  GpuScene& operator=(const GpuScene&) = delete;

  const std::string& name() const;
  size_t draw_count() const;
  size_t triangle_count() const;
  VulkanContext& context() const;

  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  explicit GpuScene(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo
