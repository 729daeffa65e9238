#include "scenes/gltf_builder.hpp"

#include <stb_image_write.h>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace kairo::scenes {

using nlohmann::json;

namespace {
constexpr int kFloat = 5126, kUint32 = 5125;
constexpr int kArrayBuffer = 34962, kElementArrayBuffer = 34963;
}  // namespace

int GltfBuilder::add_buffer_view(const void* data, size_t bytes, std::optional<int> target) {
  while (binary_.size() % 4) binary_.push_back(0);
  json view{{"buffer", 0}, {"byteOffset", binary_.size()}, {"byteLength", bytes}};
  if (target) view["target"] = *target;
  const auto* p = static_cast<const uint8_t*>(data);
  binary_.insert(binary_.end(), p, p + bytes);
  buffer_views_.push_back(view.dump());
  return int(buffer_views_.size() - 1);
}

int GltfBuilder::add_accessor(int view, int component_type, size_t count, const char* type,
                              const std::vector<float>* min, const std::vector<float>* max) {
  json accessor{{"bufferView", view}, {"componentType", component_type}, {"count", count}, {"type", type}};
  if (min) accessor["min"] = *min;
  if (max) accessor["max"] = *max;
  accessors_.push_back(accessor.dump());
  return int(accessors_.size() - 1);
}

int GltfBuilder::add_png_texture(const std::string& name, int width, int height,
                                 const std::vector<uint8_t>& rgba) {
  std::vector<uint8_t> png;
  stbi_write_png_to_func(
      [](void* context, void* data, int size) {
        auto* out = static_cast<std::vector<uint8_t>*>(context);
        out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &png, width, height, 4, rgba.data(), width * 4);
  const int view = add_buffer_view(png.data(), png.size(), std::nullopt);
  images_.push_back(json{{"name", name}, {"bufferView", view}, {"mimeType", "image/png"}}.dump());
  textures_.push_back(json{{"source", images_.size() - 1}, {"sampler", 0}}.dump());
  return int(textures_.size() - 1);
}

int GltfBuilder::add_material(const Material& m) {
  json pbr{{"baseColorFactor", {m.base_color.r, m.base_color.g, m.base_color.b, m.base_color.a}},
           {"metallicFactor", m.metallic},
           {"roughnessFactor", m.roughness}};
  if (m.base_color_texture >= 0) pbr["baseColorTexture"] = {{"index", m.base_color_texture}};
  if (m.metallic_roughness_texture >= 0)
    pbr["metallicRoughnessTexture"] = {{"index", m.metallic_roughness_texture}};
  json material{{"name", m.name},
                {"pbrMetallicRoughness", pbr},
                {"emissiveFactor", {m.emissive.r, m.emissive.g, m.emissive.b}}};
  if (m.normal_texture >= 0) material["normalTexture"] = {{"index", m.normal_texture}};
  if (m.occlusion_texture >= 0) material["occlusionTexture"] = {{"index", m.occlusion_texture}};
  if (m.emissive_texture >= 0) material["emissiveTexture"] = {{"index", m.emissive_texture}};
  materials_.push_back(material.dump());
  return int(materials_.size() - 1);
}

int GltfBuilder::add_mesh(const std::string& name, const MeshGeometry& g, int material) {
  if (g.positions.empty() || g.normals.size() != g.positions.size() || g.uvs.size() != g.positions.size())
    throw_invalid_input("mesh " + name + ": attribute counts differ");
  std::vector<float> lo(3, 1e30f), hi(3, -1e30f);
  for (const glm::vec3& p : g.positions)
    for (int i = 0; i < 3; ++i) {
      lo[i] = std::min(lo[i], p[i]);
      hi[i] = std::max(hi[i], p[i]);
    }
  const size_t n = g.positions.size();
  const int pos =
      add_accessor(add_buffer_view(g.positions.data(), n * 12, kArrayBuffer), kFloat, n, "VEC3", &lo, &hi);
  const int nrm = add_accessor(add_buffer_view(g.normals.data(), n * 12, kArrayBuffer), kFloat, n, "VEC3");
  const int uv = add_accessor(add_buffer_view(g.uvs.data(), n * 8, kArrayBuffer), kFloat, n, "VEC2");
  const int idx = add_accessor(add_buffer_view(g.indices.data(), g.indices.size() * 4, kElementArrayBuffer),
                               kUint32, g.indices.size(), "SCALAR");
  json primitive{{"attributes", {{"POSITION", pos}, {"NORMAL", nrm}, {"TEXCOORD_0", uv}}},
                 {"indices", idx},
                 {"material", material}};
  meshes_.push_back(json{{"name", name}, {"primitives", json::array({primitive})}}.dump());
  return int(meshes_.size() - 1);
}

int GltfBuilder::add_node(const std::string& name, std::optional<int> mesh, const Transform& t, int parent) {
  json node{{"name", name},
            {"translation", {t.translation.x, t.translation.y, t.translation.z}},
            {"rotation", {t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w}},
            {"scale", {t.scale.x, t.scale.y, t.scale.z}}};
  if (mesh) node["mesh"] = *mesh;
  nodes_.push_back(Node{node.dump(), {}, parent});
  const int index = int(nodes_.size() - 1);
  if (parent >= 0) nodes_.at(size_t(parent)).children.push_back(index);
  return index;
}

void GltfBuilder::write_glb(const std::filesystem::path& path) const {
  auto parse_all = [](const std::vector<std::string>& items) {
    json array = json::array();
    for (const auto& s : items) array.push_back(json::parse(s));
    return array;
  };
  json doc{{"asset", {{"version", "2.0"}, {"generator", "kairo-scenegen"}}},
           {"scene", 0},
           {"buffers", {{{"byteLength", binary_.size()}}}},
           {"bufferViews", parse_all(buffer_views_)},
           {"accessors", parse_all(accessors_)},
           {"materials", parse_all(materials_)},
           {"meshes", parse_all(meshes_)},
           // Trilinear, repeating: the defaults a real asset would use.
           {"samplers", {{{"magFilter", 9729}, {"minFilter", 9987}, {"wrapS", 10497}, {"wrapT", 10497}}}}};
  if (!images_.empty()) {
    doc["images"] = parse_all(images_);
    doc["textures"] = parse_all(textures_);
  }
  json nodes = json::array(), roots = json::array();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    json node = json::parse(nodes_[i].json);
    if (!nodes_[i].children.empty()) node["children"] = nodes_[i].children;
    if (nodes_[i].parent < 0) roots.push_back(i);
    nodes.push_back(node);
  }
  doc["nodes"] = nodes;
  doc["scenes"] = {{{"nodes", roots}}};

  std::string text = doc.dump();
  while (text.size() % 4) text.push_back(' ');
  std::vector<uint8_t> bin = binary_;
  while (bin.size() % 4) bin.push_back(0);
  const uint32_t total = uint32_t(12 + 8 + text.size() + 8 + bin.size());
  std::ofstream out(path, std::ios::binary);
  if (!out) throw_runtime("cannot write " + path.string());
  auto u32 = [&](uint32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
  u32(0x46546C67);  // "glTF"
  u32(2);
  u32(total);
  u32(uint32_t(text.size()));
  u32(0x4E4F534A);  // "JSON"
  out.write(text.data(), std::streamsize(text.size()));
  u32(uint32_t(bin.size()));
  u32(0x004E4942);  // "BIN\0"
  out.write(reinterpret_cast<const char*>(bin.data()), std::streamsize(bin.size()));
  if (!out) throw_runtime("error writing " + path.string());
}

}  // namespace kairo::scenes
