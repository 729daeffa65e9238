// Compressed and quantised glTF (renderer/gltf_extensions.hpp): files from gltfpack (tests/data/gltfpack)
// render like the originals; Draco still loads; Basis-only textures and corrupt compressed data are refused
// with the reason.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "renderer/gltf_extensions.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

using nlohmann::json;

std::filesystem::path fixture(const char* name) {
  return std::filesystem::path(KAIRO_SOURCE_DIR) / "tests/data/gltfpack" / name;
}

// Frames a model: 2.2 bounding radii away, slightly above, looking at its centre.
Pose framing(const SceneData& s) {
  const glm::vec3 centre = (s.bounds_min + s.bounds_max) * 0.5f;
  const float radius = glm::length(s.bounds_max - s.bounds_min) * 0.5f;
  return test::look_at(centre + glm::normalize(glm::vec3(0.3f, 0.35f, 1)) * radius * 2.2f, centre);
}

ImageRgba8 render(const std::filesystem::path& model, const Pose& head) {
  auto scene = GpuScene::upload(test::vulkan(), load_scene(model));
  return test::render_once(scene, 192, 192, test::head_view(head));
}

// The decoded file against the original, from the original's framing. Quantisation moves vertices by up to
// half a step (14 bits of the model's extent) and texture coordinates by 12 bits: edges shift by a fraction
// of a pixel, so the bar is 35 dB and at most 2 % of pixels off by more than 24 levels.
void expect_like_original(const std::filesystem::path& original, const char* decoded) {
  SCOPED_TRACE(decoded);
  const SceneData reference = load_scene(original);
  const Pose head = framing(reference);
  const SceneData compressed = load_scene(fixture(decoded));
  // gltfpack drops degenerate triangles (2CylinderEngine: 121,496 -> 110,342).
  EXPECT_LE(compressed.triangle_count(), reference.triangle_count());
  EXPECT_GE(compressed.triangle_count(), reference.triangle_count() * 9 / 10);
  EXPECT_EQ(compressed.textures.size(), reference.textures.size());
  EXPECT_LT(glm::length(compressed.bounds_min - reference.bounds_min),
            glm::length(reference.bounds_max - reference.bounds_min) * 1e-3f);
  const ImageDifference d = compare_images(render(fixture(decoded), head), render(original, head), 24);
  EXPECT_GE(d.psnr_db, 35.0);
  EXPECT_LE(d.fraction_over, 0.02);
  test::expect_validation_clean();
}

TEST(CompressedGltf, quantised_and_meshopt_files_render_like_the_original) {
  const auto box = test::assimp_models() / "glTF2/BoxTextured-glTF-Binary/BoxTextured.glb";
  expect_like_original(box, "BoxTextured.quantised.glb");
  expect_like_original(box, "BoxTextured.meshopt.glb");
  expect_like_original(test::assimp_models() / "glTF2/2CylinderEngine-glTF-Binary/2CylinderEngine.glb",
                       "2CylinderEngine.meshopt.glb");
}

TEST(CompressedGltf, draco_still_renders_like_the_original) {
  const auto original = test::assimp_models() / "glTF2/2CylinderEngine-glTF-Binary/2CylinderEngine.glb",
             draco = test::assimp_models() / "glTF2/draco/2CylinderEngine.gltf";
  const Pose head = framing(load_scene(original));
  const ImageDifference d = compare_images(render(draco, head), render(original, head), 24);
  EXPECT_GE(d.psnr_db, 35.0);
  EXPECT_LE(d.fraction_over, 0.02);
}

// A GLB's JSON, and the GLB again with new JSON (the binary chunk kept).
json glb_json(const std::string& glb) {
  uint32_t length = 0;
  std::memcpy(&length, glb.data() + 12, 4);
  return json::parse(glb.substr(20, length));
}
std::string with_json(const std::string& glb, const json& doc) {
  uint32_t old_length = 0;
  std::memcpy(&old_length, glb.data() + 12, 4);
  std::string text = doc.dump();
  text.resize((text.size() + 3) & ~size_t(3), ' ');
  std::string out = glb.substr(0, 12);
  const auto u32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  u32(uint32_t(text.size()));
  u32(0x4E4F534A);
  out += text + glb.substr(20 + old_length);
  const uint32_t total = uint32_t(out.size());
  std::memcpy(out.data() + 8, &total, 4);
  return out;
}
std::string read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
std::filesystem::path write(const std::string& bytes, const char* name) {
  const auto path = test::temp_dir() / name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}
std::string refusal(const std::filesystem::path& path) {
  try {
    load_scene(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CompressedGltf, a_basis_only_texture_is_refused_naming_the_extension_and_a_fallback_is_used) {
  const std::string glb = read(fixture("BoxTextured.quantised.glb"));
  json doc = glb_json(glb);
  doc["extensionsUsed"].push_back("KHR_texture_basisu");
  doc["images"].push_back(json{{"uri", "box.ktx2"}, {"mimeType", "image/ktx2"}});
  const auto fallback = write(with_json(glb, doc), "fallback.glb");
  std::ofstream(fallback.parent_path() / "box.ktx2", std::ios::binary) << "\xABKTX 20\xBB\r\n\x1A\n";
  // With the PNG as a fallback: loads, textured.
  doc["textures"][0]["extensions"]["KHR_texture_basisu"] = json{{"source", 1}};
  std::ofstream(fallback, std::ios::binary) << with_json(glb, doc);
  EXPECT_EQ(load_scene(fallback).textures.size(), 1u);
  // Basis only: refused, naming the extension.
  doc["textures"][0].erase("source");
  doc["extensionsRequired"].push_back("KHR_texture_basisu");
  const std::string why = refusal(write(with_json(glb, doc), "basis-only.glb"));
  EXPECT_NE(why.find("KHR_texture_basisu"), std::string::npos) << why;
  EXPECT_NE(why.find("basis-only.glb"), std::string::npos) << why;
}

TEST(CompressedGltf, corrupt_or_truncated_compressed_data_is_refused_with_the_reason) {
  const std::string glb = read(fixture("2CylinderEngine.meshopt.glb"));
  const json doc = glb_json(glb);
  int compressed_views = 0;
  for (size_t i = 0; i < doc["bufferViews"].size(); ++i) {
    if (!doc["bufferViews"][i].contains("extensions")) continue;
    ++compressed_views;
    SCOPED_TRACE(i);
    json cut = doc;
    auto& ext = cut["bufferViews"][i]["extensions"]["EXT_meshopt_compression"];
    ext["byteLength"] = ext["byteLength"].get<uint64_t>() / 2;  // truncated stream
    std::string why = refusal(write(with_json(glb, cut), "truncated.glb"));
    EXPECT_NE(why.find("does not decode"), std::string::npos) << why;
    json past = doc;
    past["bufferViews"][i]["extensions"]["EXT_meshopt_compression"]["byteOffset"] = 1ull << 40;
    why = refusal(write(with_json(glb, past), "past-the-end.glb"));
    EXPECT_NE(why.find("runs past the end"), std::string::npos) << why;
  }
  EXPECT_EQ(compressed_views, 3);
  // The file itself cut short.
  const std::string why = refusal(write(glb.substr(0, glb.size() / 2), "half.glb"));
  EXPECT_NE(why.find("half.glb"), std::string::npos) << why;
}

// `kairo scene upload` sends a .gltf with its buffer and image as one self-contained GLB: it loads alone (no
// file beside it) to the same scene.
TEST(CompressedGltf, a_gltf_with_its_files_packs_into_one_glb_that_loads_alone) {
  const auto original = test::assimp_models() / "glTF2/BoxTextured-glTF/BoxTextured.gltf";
  const std::string packed = pack_gltf(original, 1 << 30);
  ASSERT_GE(packed.size(), 12u);
  EXPECT_EQ(packed.substr(0, 4), "glTF");
  const auto alone = write(packed, "packed.glb");  // a directory of its own: no .bin or .png beside it
  const SceneData a = load_scene(original), b = load_scene(alone);
  EXPECT_EQ(b.triangle_count(), a.triangle_count());
  ASSERT_EQ(b.textures.size(), a.textures.size());
  EXPECT_EQ(b.textures[0].rgba, a.textures[0].rgba);
  EXPECT_EQ(b.vertices.size(), a.vertices.size());
}

}  // namespace
}  // namespace kairo
