#pragma once
// A scene in host memory, as loaded from a file: one vertex/index pool, materials, textures, and the
// flattened node hierarchy as a list of (mesh, world transform) draws. Uploaded once by GpuScene.
#include <array>
#include <cstdint>
#include <filesystem>
#include <glm/glm.hpp>
#include <string>
#include <vector>

namespace kairo {

struct Vertex {
  glm::vec3 position;
  glm::vec3 normal;
  glm::vec2 uv;
  glm::vec4 tangent;  // xyz, w = handedness; zero when the mesh has no tangents
};
static_assert(sizeof(Vertex) == 48);

enum TextureSlot : int { kBaseColor = 0, kNormal, kMetallicRoughness, kOcclusion, kEmissive, kTextureSlots };

struct TextureData {
  std::string name;
  int width = 0;
  int height = 0;
  bool srgb = false;  // colour data (base colour, emissive) is sRGB-encoded; the rest is linear
  std::vector<uint8_t> rgba;
};

struct MaterialData {
  std::string name;
  glm::vec4 base_color_factor{1.0f};
  glm::vec3 emissive_factor{0.0f};
  float metallic = 1.0f;  // glTF defaults: fully metallic and rough, scaled by the texture when present
  float roughness = 1.0f;
  float normal_scale = 1.0f;
  float occlusion_strength = 1.0f;
  float alpha_cutoff = 0.5f;
  bool alpha_mask = false;
  std::array<int, kTextureSlots> textures{-1, -1, -1, -1, -1};  // index into SceneData::textures, -1 = none
};

// One level of detail of a mesh: its triangles in the scene's index pool and how far, at most, its surface
// lies from the full-detail one (object space, the model's units). Level 0 is the mesh itself (error 0).
struct MeshLod {
  uint32_t first_index = 0;
  uint32_t index_count = 0;
  float error = 0.0f;
};
constexpr int kMaxLods = 4;

struct MeshData {
  uint32_t first_index = 0;
  uint32_t index_count = 0;
  int32_t vertex_offset = 0;
  uint32_t material = 0;
  // Levels of detail (renderer/mesh_lod.hpp): lods[0] is first_index/index_count; coarser ones follow.
  std::array<MeshLod, kMaxLods> lods{};
  uint32_t lod_count = 1;
  // Object-space bounding sphere, for the distance a level's error is seen from.
  glm::vec3 center{0.0f};
  float radius = 0.0f;
};

struct DrawData {
  uint32_t mesh = 0;
  glm::mat4 transform{1.0f};
};

struct SceneData {
  std::string name;
  std::vector<Vertex> vertices;
  std::vector<uint32_t> indices;
  std::vector<TextureData> textures;
  std::vector<MaterialData> materials;
  std::vector<MeshData> meshes;
  std::vector<DrawData> draws;
  glm::vec3 bounds_min{0.0f};
  glm::vec3 bounds_max{0.0f};
  size_t triangle_count() const;  // as drawn (instances counted)
};

// Caps that keep a hostile or absurd file from exhausting memory; checked before and after import.
struct SceneLimits {
  uint64_t max_file_bytes = 1ull << 30;
  uint64_t max_vertices = 20'000'000;
  uint64_t max_triangles = 20'000'000;
  uint64_t max_draws = 100'000;
  int max_texture_dimension = 16384;
  uint64_t max_texture_bytes = 2ull << 30;
  bool refuse_on_import_errors = true;  // errors assimp logs (and works around) make the file invalid
};

// glTF 2.0 (.gltf/.glb), FBX, OBJ, Collada and everything else assimp reads. Throws kairo::Error naming the
// file and the reason for missing, corrupt or over-limit files.
SceneData load_scene(const std::filesystem::path& path, const SceneLimits& limits = {});

}  // namespace kairo
