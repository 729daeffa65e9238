#include <gtest/gtest.h>
#include <fstream>

#include "core/error.hpp"
#include "renderer/scene_data.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

TEST(SceneLoader, the_vr_room_has_textured_pbr_materials_and_a_node_hierarchy) {
  const SceneData room = load_scene(test::scene_path("vr-room.glb"));
  EXPECT_GE(room.draws.size(), 20u);
  EXPECT_GE(room.textures.size(), 6u);
  bool normal_mapped = false, metallic_rough_mapped = false, emissive = false;
  for (const MaterialData& m : room.materials) {
    normal_mapped |= m.textures[kNormal] >= 0;
    metallic_rough_mapped |= m.textures[kMetallicRoughness] >= 0;
    emissive |= m.emissive_factor != glm::vec3(0.0f);
  }
  EXPECT_TRUE(normal_mapped && metallic_rough_mapped && emissive);
  // The table's children (legs, spheres) are placed through their parent: spheres sit on the table top 3 m
  // ahead.
  EXPECT_NEAR(room.bounds_min.y, 0.0f, 1e-3f);
  EXPECT_NEAR(room.bounds_max.y, 4.0f, 1e-3f);
  for (const TextureData& t : room.textures) {
    if (t.name == "floor grid") {
      EXPECT_TRUE(t.srgb);  // base colour is sRGB...
    }
    if (t.name == "brick normal") {
      EXPECT_FALSE(t.srgb);  // ...normal maps are linear
    }
  }
}

TEST(SceneLoader, the_stress_scene_has_over_500k_triangles_in_over_200_draws) {
  const SceneData stress = load_scene(test::scene_path("stress.glb"));
  EXPECT_GE(stress.triangle_count(), 500'000u);
  EXPECT_GE(stress.draws.size(), 200u);
}

TEST(SceneLoader, reads_gltf_fbx_obj_and_collada) {
  const auto models = test::assimp_models();
  for (const char* file :
       {"glTF2/BoxTextured-glTF/BoxTextured.gltf", "glTF2/BoxTextured-glTF-Binary/BoxTextured.glb",
        "glTF2/BoxTextured-glTF-Embedded/BoxTextured.gltf", "FBX/box.fbx", "OBJ/spider.obj",
        "Collada/duck.dae"}) {
    SCOPED_TRACE(file);
    const SceneData scene = load_scene(models / file);
    EXPECT_FALSE(scene.draws.empty());
  }
  // External and embedded textures both arrive.
  EXPECT_EQ(load_scene(models / "glTF2/BoxTextured-glTF/BoxTextured.gltf").textures.size(), 1u);
  EXPECT_EQ(load_scene(models / "glTF2/BoxTextured-glTF-Embedded/BoxTextured.gltf").textures.size(), 1u);
  EXPECT_EQ(load_scene(models / "Collada/duck.dae").textures.size(), 1u);
}

TEST(SceneLoader, every_invalid_assimp_test_model_is_refused_cleanly) {
  const auto dir = test::assimp_models() / "invalid";
  int refused = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".txt") continue;  // the folder's readme
    SCOPED_TRACE(entry.path().string());
    try {
      load_scene(entry.path());
      ADD_FAILURE() << "accepted an invalid model";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(entry.path().filename().string()), std::string::npos) << e.what();
      ++refused;
    }
  }
  EXPECT_GE(refused, 10);
}

TEST(SceneLoader, a_file_declaring_billions_of_elements_is_refused_before_import) {
  // assimp's own OutOfMemory.off made it touch 15 GiB before failing; the loader must refuse it up front.
  try {
    load_scene(test::assimp_models() / "invalid/OutOfMemory.off");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("declares 353535235358 elements"), std::string::npos) << e.what();
  }
  const auto ply = test::temp_dir() / "huge.ply";
  std::ofstream(ply)
      << "ply\nformat ascii 1.0\nelement vertex 99999999999\nproperty float x\nend_header\n0\n";
  EXPECT_THROW(load_scene(ply), Error);
}

TEST(SceneLoader, broken_gltf_files_from_the_test_models_are_refused_or_loaded_without_crashing) {
  const auto glTF2 = test::assimp_models() / "glTF2";
  for (const char* file :
       {"IndexOutOfRange/IndexOutOfRange.gltf", "IndexOutOfRange/AllIndicesOutOfRange.gltf",
        "MissingBin/BoxTextured.gltf", "RecursiveNodes/RecursiveNodes.gltf",
        "BoxWithInfinites-glTF-Binary/BoxWithInfinites.glb", "wrongTypes/badArray.gltf"}) {
    SCOPED_TRACE(file);
    if (!std::filesystem::exists(glTF2 / file)) continue;
    try {
      load_scene(glTF2 / file);
    } catch (const Error&) {
    }
  }
}

TEST(SceneLoader, absurd_sizes_are_refused_before_memory_runs_out) {
  EXPECT_THROW(load_scene(test::scene_path("stress.glb"), SceneLimits{.max_triangles = 1000}), Error);
  EXPECT_THROW(load_scene(test::scene_path("vr-room.glb"), SceneLimits{.max_file_bytes = 1000}), Error);
  EXPECT_THROW(load_scene(test::scene_path("vr-room.glb"), SceneLimits{.max_texture_dimension = 64}), Error);
  // A glTF that claims two billion vertices in a tiny buffer.
  const auto path = test::temp_dir() / "billions.gltf";
  std::ofstream(path)
      << R"({"asset":{"version":"2.0"},"buffers":[{"byteLength":12,"uri":"data:application/octet-stream;base64,AAAAAAAAAAAAAAAA"}],)"
      << R"("bufferViews":[{"buffer":0,"byteLength":12}],)"
      << R"("accessors":[{"bufferView":0,"componentType":5126,"count":2000000000,"type":"VEC3"}],)"
      << R"("meshes":[{"primitives":[{"attributes":{"POSITION":0}}]}],"nodes":[{"mesh":0}],"scenes":[{"nodes":[0]}],"scene":0})";
  EXPECT_THROW(load_scene(path), Error);
}

TEST(SceneLoader, missing_and_empty_files_are_refused) {
  EXPECT_THROW(load_scene("/nonexistent.glb"), Error);
  const auto empty = test::temp_dir() / "empty.obj";
  std::ofstream{empty};
  EXPECT_THROW(load_scene(empty), Error);
}

}  // namespace
}  // namespace kairo
