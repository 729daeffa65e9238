#pragma once
// Private to renderer/: what StereoRenderer needs to draw a GpuScene.
#include "renderer/gpu_scene.hpp"
#include "renderer/vulkan_impl.hpp"

namespace kairo {

struct GpuDraw {
  glm::mat4 model;
  glm::mat4 normal_matrix;
  int32_t vertex_offset;
  uint32_t material;
  // The triangles at each level of detail (renderer/mesh_lod.hpp; [0] full detail); errors in world units.
  std::array<MeshLod, kMaxLods> lods{};
  std::array<float, kMaxLods> world_errors{};
  uint32_t lod_count = 1;
  glm::vec3 world_center{0.0f};  // the mesh's bounding sphere under `model`
  float world_radius = 0.0f;
};

struct GpuScene::Impl {
  std::shared_ptr<VulkanContext> context;
  std::string name;
  size_t triangles = 0;
  Buffer vertices;
  Buffer indices;
  Buffer material_uniforms;
  std::vector<Image> textures;  // scene textures followed by the three defaults
  vk::raii::Sampler sampler = nullptr;
  vk::raii::DescriptorSetLayout material_layout = nullptr;
  vk::raii::DescriptorPool descriptor_pool = nullptr;
  std::vector<vk::raii::DescriptorSet> material_sets;
  // Per material set: which of its maps it has (bit TextureSlot), the scene pipeline's specialisation.
  std::vector<uint8_t> material_maps;
  std::vector<GpuDraw> draws;          // sorted by material to minimise descriptor binds
  GpuDraw unit_cube{};                 // the built-in cube for DynamicDraw (model and material set per draw)
  uint32_t builtin_material_base = 0;  // material_sets index of BuiltinMaterial 0
};

}  // namespace kairo
