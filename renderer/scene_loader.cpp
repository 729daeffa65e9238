#include <assimp/GltfMaterial.h>
#include <assimp/postprocess.h>
#include <assimp/scene.h>
#include <meshoptimizer.h>
#include <spdlog/spdlog.h>
#include <stb_image.h>
#include <assimp/DefaultLogger.hpp>
#include <assimp/Importer.hpp>
#include <assimp/LogStream.hpp>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "core/error.hpp"
#include "renderer/gltf_extensions.hpp"
#include "renderer/mesh_lod.hpp"
#include "renderer/scene_data.hpp"

namespace kairo {

size_t SceneData::triangle_count() const {
  size_t triangles = 0;
  for (const DrawData& d : draws) triangles += meshes[d.mesh].index_count / 3;
  return triangles;
}

namespace {

class SceneBuilder {
 public:
  SceneBuilder(const aiScene& scene, const std::filesystem::path& path, const SceneLimits& limits)
      : scene_(scene), path_(path), limits_(limits) {}

  SceneData build() {
    out_.name = path_.filename().string();
    check_counts();
    for (unsigned i = 0; i < scene_.mNumMaterials; ++i)
      out_.materials.push_back(material(*scene_.mMaterials[i]));
    if (out_.materials.empty()) out_.materials.push_back(MaterialData{.name = "default", .metallic = 0.0f});
    for (unsigned i = 0; i < scene_.mNumMeshes; ++i) mesh(*scene_.mMeshes[i]);
    if (scene_.mRootNode == nullptr) fail("the file has no root node");
    visit(*scene_.mRootNode, glm::mat4(1.0f), 0);
    if (out_.draws.empty()) fail("the scene has no triangle meshes to draw");
    bounds();
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(const std::string& why) const { throw_invalid_input(path_.string() + ": " + why); }

  void check_counts() {
    uint64_t vertices = 0, faces = 0;
    for (unsigned i = 0; i < scene_.mNumMeshes; ++i) {
      vertices += scene_.mMeshes[i]->mNumVertices;
      faces += scene_.mMeshes[i]->mNumFaces;
    }
    if (vertices > limits_.max_vertices)
      fail(std::to_string(vertices) + " vertices exceed the limit of " +
           std::to_string(limits_.max_vertices));
    if (faces > limits_.max_triangles)
      fail(std::to_string(faces) + " triangles exceed the limit of " + std::to_string(limits_.max_triangles));
  }

  int texture(const aiMaterial& m, aiTextureType type, bool srgb) {
    aiString file;
    if (m.GetTextureCount(type) == 0 || m.GetTexture(type, 0, &file) != AI_SUCCESS) return -1;
    const std::string key = std::string(file.C_Str()) + (srgb ? "#srgb" : "#linear");
    if (const auto it = texture_index_.find(key); it != texture_index_.end()) return it->second;

    int w = 0, h = 0, channels = 0;
    stbi_uc* pixels = nullptr;
    if (const aiTexture* embedded = scene_.GetEmbeddedTexture(file.C_Str())) {
      if (embedded->mHeight == 0) {  // compressed (PNG/JPEG) bytes
        pixels = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(embedded->pcData),
                                       static_cast<int>(embedded->mWidth), &w, &h, &channels, 4);
      } else {  // raw ARGB8888 texels
        w = static_cast<int>(embedded->mWidth);
        h = static_cast<int>(embedded->mHeight);
        if (w > limits_.max_texture_dimension || h > limits_.max_texture_dimension)
          fail("embedded texture too large");
        pixels = static_cast<stbi_uc*>(std::malloc(size_t(w) * h * 4));
        for (size_t i = 0; i < size_t(w) * h; ++i) {
          const aiTexel& t = embedded->pcData[i];
          pixels[i * 4 + 0] = t.r;
          pixels[i * 4 + 1] = t.g;
          pixels[i * 4 + 2] = t.b;
          pixels[i * 4 + 3] = t.a;
        }
      }
    } else {
      std::string relative = file.C_Str();
      for (char& c : relative)
        if (c == '\\') c = '/';  // files exported on Windows
      const std::filesystem::path texture_path = path_.parent_path() / relative;
      int probe_w = 0, probe_h = 0, probe_c = 0;
      if (stbi_info(texture_path.c_str(), &probe_w, &probe_h, &probe_c) &&
          (probe_w > limits_.max_texture_dimension || probe_h > limits_.max_texture_dimension))
        fail("texture " + relative + " is larger than " + std::to_string(limits_.max_texture_dimension) +
             " pixels");
      pixels = stbi_load(texture_path.c_str(), &w, &h, &channels, 4);
      if (pixels == nullptr) {
        // A missing texture should not make a whole scene unusable: draw with the factor alone, and say so.
        spdlog::warn("{}: texture {} not loaded ({}); using the material's factors", path_.string(), relative,
                     stbi_failure_reason());
        texture_index_[key] = -1;
        return -1;
      }
    }
    if (pixels == nullptr)
      fail(std::string("embedded texture ") + file.C_Str() + " is corrupt: " + stbi_failure_reason());
    std::unique_ptr<stbi_uc, void (*)(void*)> owned(pixels, std::free);
    if (w <= 0 || h <= 0 || w > limits_.max_texture_dimension || h > limits_.max_texture_dimension)
      fail(std::string("texture ") + file.C_Str() + " has an unsupported size");
    texture_bytes_ += uint64_t(w) * h * 4;
    if (texture_bytes_ > limits_.max_texture_bytes) fail("textures exceed the memory limit");

    TextureData data{.name = file.C_Str(), .width = w, .height = h, .srgb = srgb, .rgba = {}};
    data.rgba.assign(pixels, pixels + size_t(w) * h * 4);
    out_.textures.push_back(std::move(data));
    const int index = int(out_.textures.size() - 1);
    texture_index_[key] = index;
    return index;
  }

  MaterialData material(const aiMaterial& m) {
    MaterialData out;
    out.name = m.GetName().C_Str();
    aiColor4D color;
    if (m.Get(AI_MATKEY_BASE_COLOR, color) == AI_SUCCESS ||
        m.Get(AI_MATKEY_COLOR_DIFFUSE, color) == AI_SUCCESS)
      out.base_color_factor = glm::vec4(color.r, color.g, color.b, color.a);
    aiColor3D emissive;
    if (m.Get(AI_MATKEY_COLOR_EMISSIVE, emissive) == AI_SUCCESS)
      out.emissive_factor = glm::vec3(emissive.r, emissive.g, emissive.b);
    float value = 0;
    const bool has_pbr = m.Get(AI_MATKEY_METALLIC_FACTOR, value) == AI_SUCCESS;
    out.metallic = has_pbr ? value : 0.0f;  // non-PBR formats (OBJ, Collada): dielectric
    if (m.Get(AI_MATKEY_ROUGHNESS_FACTOR, value) == AI_SUCCESS)
      out.roughness = value;
    else if (!has_pbr)
      out.roughness = 0.6f;
    if (m.Get(AI_MATKEY_GLTF_ALPHACUTOFF, value) == AI_SUCCESS) out.alpha_cutoff = value;
    aiString alpha_mode;
    if (m.Get(AI_MATKEY_GLTF_ALPHAMODE, alpha_mode) == AI_SUCCESS)
      out.alpha_mask = std::string(alpha_mode.C_Str()) == "MASK";

    out.textures[kBaseColor] = texture(m, aiTextureType_BASE_COLOR, true);
    if (out.textures[kBaseColor] < 0) out.textures[kBaseColor] = texture(m, aiTextureType_DIFFUSE, true);
    out.textures[kNormal] = texture(m, aiTextureType_NORMALS, false);
    out.textures[kMetallicRoughness] = texture(m, aiTextureType_DIFFUSE_ROUGHNESS, false);
    if (out.textures[kMetallicRoughness] < 0)
      out.textures[kMetallicRoughness] = texture(m, aiTextureType_UNKNOWN, false);
    out.textures[kOcclusion] = texture(m, aiTextureType_LIGHTMAP, false);
    if (out.textures[kOcclusion] < 0)
      out.textures[kOcclusion] = texture(m, aiTextureType_AMBIENT_OCCLUSION, false);
    out.textures[kEmissive] = texture(m, aiTextureType_EMISSIVE, true);
    if (out.textures[kEmissive] >= 0 && out.emissive_factor == glm::vec3(0.0f))
      out.emissive_factor = glm::vec3(1.0f);
    return out;
  }

  void mesh(const aiMesh& m) {
    MeshData out;
    out.material = m.mMaterialIndex < out_.materials.size() ? m.mMaterialIndex : 0;
    out.vertex_offset = static_cast<int32_t>(out_.vertices.size());
    out.first_index = static_cast<uint32_t>(out_.indices.size());
    const bool triangles = (m.mPrimitiveTypes & aiPrimitiveType_TRIANGLE) != 0;
    if (triangles && m.HasPositions()) {
      const size_t first_vertex = out_.vertices.size();
      for (unsigned v = 0; v < m.mNumVertices; ++v) {
        Vertex vertex{};
        vertex.position = glm::vec3(m.mVertices[v].x, m.mVertices[v].y, m.mVertices[v].z);
        if (m.HasNormals()) vertex.normal = glm::vec3(m.mNormals[v].x, m.mNormals[v].y, m.mNormals[v].z);
        if (m.HasTextureCoords(0)) vertex.uv = glm::vec2(m.mTextureCoords[0][v].x, m.mTextureCoords[0][v].y);
        if (m.HasTangentsAndBitangents()) {
          const glm::vec3 t(m.mTangents[v].x, m.mTangents[v].y, m.mTangents[v].z);
          const glm::vec3 b(m.mBitangents[v].x, m.mBitangents[v].y, m.mBitangents[v].z);
          const float handedness = glm::dot(glm::cross(vertex.normal, t), b) < 0.0f ? -1.0f : 1.0f;
          vertex.tangent = glm::vec4(t, handedness);
        }
        if (!std::isfinite(vertex.position.x) || !std::isfinite(vertex.position.y) ||
            !std::isfinite(vertex.position.z))
          vertex.position = glm::vec3(0.0f);  // assimp keeps infinities of malformed files: collapse them
        out_.vertices.push_back(vertex);
      }
      const size_t first_index = out_.indices.size();
      for (unsigned f = 0; f < m.mNumFaces; ++f) {
        const aiFace& face = m.mFaces[f];
        if (face.mNumIndices != 3) continue;  // points and lines are not drawn
        bool valid = true;
        for (int k = 0; k < 3; ++k) valid = valid && face.mIndices[k] < m.mNumVertices;
        if (!valid) fail("mesh " + std::string(m.mName.C_Str()) + " has an index out of range");
        for (int k = 0; k < 3; ++k) out_.indices.push_back(face.mIndices[k]);
      }
      // Vertex-cache order makes the rasteriser's (and lavapipe's) vertex reuse effective.
      const size_t count = out_.indices.size() - first_index;
      meshopt_optimizeVertexCache(out_.indices.data() + first_index, out_.indices.data() + first_index, count,
                                  out_.vertices.size() - first_vertex);
      out.index_count = static_cast<uint32_t>(count);
      build_mesh_lods(out, std::span<const Vertex>(out_.vertices).subspan(first_vertex), out_.indices);
    } else {
      build_mesh_lods(out, {}, out_.indices);
    }
    out_.meshes.push_back(out);
  }

  void visit(const aiNode& node, const glm::mat4& parent, int depth) {
    if (depth > 256) fail("node hierarchy deeper than 256 levels (recursive nodes?)");
    const aiMatrix4x4& t = node.mTransformation;  // row-major
    const glm::mat4 local(t.a1, t.b1, t.c1, t.d1, t.a2, t.b2, t.c2, t.d2, t.a3, t.b3, t.c3, t.d3, t.a4, t.b4,
                          t.c4, t.d4);
    const glm::mat4 world = parent * local;
    for (unsigned i = 0; i < node.mNumMeshes; ++i) {
      const unsigned mesh = node.mMeshes[i];
      if (mesh >= out_.meshes.size()) fail("node refers to a mesh that does not exist");
      if (out_.meshes[mesh].index_count == 0) continue;
      if (out_.draws.size() >= limits_.max_draws)
        fail("more than " + std::to_string(limits_.max_draws) + " draws");
      out_.draws.push_back(DrawData{.mesh = mesh, .transform = world});
    }
    for (unsigned i = 0; i < node.mNumChildren; ++i) visit(*node.mChildren[i], world, depth + 1);
  }

  void bounds() {
    glm::vec3 lo(INFINITY), hi(-INFINITY);
    for (const DrawData& d : out_.draws) {
      const MeshData& m = out_.meshes[d.mesh];
      for (uint32_t i = 0; i < m.index_count; ++i) {
        const glm::vec3 p = glm::vec3(
            d.transform *
            glm::vec4(out_.vertices[m.vertex_offset + out_.indices[m.first_index + i]].position, 1));
        lo = glm::min(lo, p);
        hi = glm::max(hi, p);
      }
    }
    out_.bounds_min = lo;
    out_.bounds_max = hi;
  }

  const aiScene& scene_;
  std::filesystem::path path_;
  SceneLimits limits_;
  SceneData out_;
  std::map<std::string, int> texture_index_;
  uint64_t texture_bytes_ = 0;
};

// Assimp reports many malformed inputs (missing materials, broken faces) as logged errors while still
// returning a scene. Kairo refuses such files: a scene that renders differently from what its author made
// is worse than a clear error. Assimp's logger is process-wide, hence the lock around an import.
class ImportErrorCapture : public Assimp::LogStream {
 public:
  ImportErrorCapture() {
    if (Assimp::DefaultLogger::isNullLogger()) Assimp::DefaultLogger::create("", Assimp::Logger::NORMAL, 0);
    Assimp::DefaultLogger::get()->attachStream(this, Assimp::Logger::Err);
  }
  ~ImportErrorCapture() override { Assimp::DefaultLogger::get()->detachStream(this, Assimp::Logger::Err); }
  void write(const char* message) override {
    if (first_error_.empty()) first_error_ = message;
    while (!first_error_.empty() && (first_error_.back() == '\n' || first_error_.back() == '\r'))
      first_error_.pop_back();
  }
  const std::string& first_error() const { return first_error_; }

 private:
  std::string first_error_;
};

std::mutex import_mutex;

// Formats that declare element counts up front (OFF, PLY) let assimp reserve memory for them before reading a
// single element: a 300-byte OFF claiming 353 billion vertices made it touch 15 GiB. Every element takes at
// least one byte of the file, so a count above the file size is a lie, refused before assimp sees it.
// (Hand-written: assimp has no such limit, and only these formats need it.)
void check_declared_counts(const std::filesystem::path& path, uint64_t file_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string magic;
  std::getline(in, magic);
  while (!magic.empty() && (magic.back() == '\r' || magic.back() == ' ')) magic.pop_back();
  auto refuse = [&](uint64_t claimed) {
    throw_invalid_input(path.string() + ": declares " + std::to_string(claimed) + " elements in a file of " +
                        std::to_string(file_bytes) + " bytes");
  };
  if (magic == "OFF" || magic == "COFF" || magic == "NOFF" || magic == "STOFF") {
    std::string line;
    while (std::getline(in, line) && (line.empty() || line[0] == '#')) {
    }
    std::istringstream counts(line);
    double vertices = 0, faces = 0;
    counts >> vertices >> faces;
    if (vertices > double(file_bytes) || faces > double(file_bytes))
      refuse(uint64_t(std::max(vertices, faces)));
  } else if (magic == "ply") {
    std::string line;
    for (int lines = 0; lines < 1000 && std::getline(in, line) && line.rfind("end_header", 0) != 0; ++lines) {
      std::istringstream words(line);
      std::string keyword, name;
      double count = 0;
      if (words >> keyword >> name >> count && keyword == "element" && count > double(file_bytes))
        refuse(uint64_t(count));
    }
  }
}

}  // namespace

SceneData load_scene(const std::filesystem::path& path, const SceneLimits& limits) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw_invalid_input(path.string() + ": no such scene file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw_invalid_input(path.string() + ": cannot read: " + ec.message());
  if (size == 0) throw_invalid_input(path.string() + ": file is empty");
  if (size > limits.max_file_bytes)
    throw_invalid_input(path.string() + ": file larger than the 1 GiB scene limit");
  check_declared_counts(path, size);

  Assimp::Importer importer;
  // Points and lines are dropped at import; vertex colours, bones and cameras are not used.
  importer.SetPropertyInteger(AI_CONFIG_PP_SBP_REMOVE, aiPrimitiveType_POINT | aiPrimitiveType_LINE);
  const unsigned flags = aiProcess_Triangulate | aiProcess_GenSmoothNormals | aiProcess_CalcTangentSpace |
                         aiProcess_JoinIdenticalVertices | aiProcess_SortByPType |
                         aiProcess_ValidateDataStructure | aiProcess_FindInvalidData |
                         aiProcess_FlipUVs;  // assimp's V is bottom-up, Vulkan's top-down
  // Import first with errors captured, then post-process: post-processing repairs data (degenerate normals)
  // and logs that as an error too, which must not refuse an otherwise sound file.
  std::lock_guard lock(import_mutex);
  const aiScene* scene = nullptr;
  {
    ImportErrorCapture errors;
    // Compressed or quantised glTF, decoded first (renderer/gltf_extensions.hpp); anything else as it is.
    const std::optional<std::string> decoded = decode_gltf_extensions(path, limits.max_file_bytes);
    scene = decoded ? importer.ReadFileFromMemory(decoded->data(), decoded->size(),
                                                  aiProcess_ValidateDataStructure, "glb")
                    : importer.ReadFile(path.string(), aiProcess_ValidateDataStructure);
    if (scene == nullptr)
      throw_invalid_input(path.string() + ": cannot load scene: " + importer.GetErrorString());
    if (limits.refuse_on_import_errors && !errors.first_error().empty())
      throw_invalid_input(path.string() + ": malformed scene: " + errors.first_error());
  }
  scene = importer.ApplyPostProcessing(flags);
  if (scene == nullptr)
    throw_invalid_input(path.string() + ": cannot process scene: " + importer.GetErrorString());
  if (scene->mFlags & AI_SCENE_FLAGS_INCOMPLETE) throw_invalid_input(path.string() + ": scene is incomplete");
  SceneData data = SceneBuilder(*scene, path, limits).build();
  spdlog::info("scene {}: {} draws, {} triangles, {} materials, {} textures", data.name, data.draws.size(),
               data.triangle_count(), data.materials.size(), data.textures.size());
  return data;
}

}  // namespace kairo
