#pragma once
// Writes glTF 2.0 binary files (.glb) from meshes, PBR materials and PNG textures built in code.
// Hand-written because Debian has no glTF writer library that takes raw meshes (assimp's exporter needs a
// full aiScene and drops PBR texture slots); it covers exactly the subset Kairo's scenes use.
#include <array>
#include <cstdint>
#include <filesystem>
#include <glm/glm.hpp>
#include <glm/gtc/quaternion.hpp>
#include <optional>
#include <string>
#include <vector>

namespace kairo::scenes {

struct MeshGeometry {
  std::vector<glm::vec3> positions;
  std::vector<glm::vec3> normals;
  std::vector<glm::vec2> uvs;
  std::vector<uint32_t> indices;
};

struct Material {
  std::string name;
  glm::vec4 base_color{1.0f};
  float metallic = 0.0f;
  float roughness = 0.8f;
  glm::vec3 emissive{0.0f};
  int base_color_texture = -1;  // indices returned by add_png_texture
  int normal_texture = -1;
  int metallic_roughness_texture = -1;
  int occlusion_texture = -1;
  int emissive_texture = -1;
};

struct Transform {
  glm::vec3 translation{0.0f};
  glm::quat rotation{1.0f, 0.0f, 0.0f, 0.0f};
  glm::vec3 scale{1.0f};
};

class GltfBuilder {
 public:
  int add_png_texture(const std::string& name, int width, int height, const std::vector<uint8_t>& rgba);
  int add_material(const Material& material);
  int add_mesh(const std::string& name, const MeshGeometry& geometry, int material);
  // Returns the node index; parent -1 puts the node at the scene root.
  int add_node(const std::string& name, std::optional<int> mesh, const Transform& transform, int parent = -1);
  void write_glb(const std::filesystem::path& path) const;

 private:
  int add_buffer_view(const void* data, size_t bytes, std::optional<int> target);
  int add_accessor(int view, int component_type, size_t count, const char* type,
                   const std::vector<float>* min = nullptr, const std::vector<float>* max = nullptr);

  std::vector<uint8_t> binary_;
  std::vector<std::string> buffer_views_, accessors_, images_, textures_, materials_, meshes_;
  struct Node {
    std::string json;
    std::vector<int> children;
    int parent;
  };
  std::vector<Node> nodes_;
};

}  // namespace kairo::scenes
