// libFuzzer target: scene files through Kairo's loader (renderer/scene_loader.cpp: assimp, then Kairo's own
// checks and limits), the way a content author's broken export or a hostile upload reaches a node. The
// first byte picks the extension (.glb, .gltf, .obj; assimp chooses its importer by it), the rest is the
// file. Invariant: a file loads within the limits, or is refused with kairo::Error; never another exception,
// a crash, or memory past libFuzzer's limit. Seeds: tests/fuzz/corpus/scene_file (make_seeds.cpp).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <spdlog/spdlog.h>

#include "core/error.hpp"
#include "renderer/scene_data.hpp"
#include "tests/fuzz/scratch_file.hpp"

using namespace kairo;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const fuzz::ScratchDir scratch("kairo-scene-fuzz-");
  static const char* kExtensions[] = {".glb", ".gltf", ".obj"};
  const std::filesystem::path file =
      scratch.write(std::string("scene") + kExtensions[data[0] % 3], data + 1, size - 1);
  // Limits well under libFuzzer's memory limit: what a node would refuse before it tries.
  const SceneLimits limits{.max_file_bytes = 1 << 20,
                           .max_vertices = 100'000,
                           .max_triangles = 100'000,
                           .max_draws = 1'000,
                           .max_texture_dimension = 1024,
                           .max_texture_bytes = 16 << 20,
                           .refuse_on_import_errors = true};
  try {
    const SceneData scene = load_scene(file, limits);
    if (scene.draws.empty() || scene.triangle_count() > limits.max_triangles) __builtin_trap();
    for (const DrawData& d : scene.draws)
      if (d.mesh >= scene.meshes.size()) __builtin_trap();
    for (const MeshData& m : scene.meshes) {
      if (m.material >= scene.materials.size()) __builtin_trap();
      if (uint64_t(m.first_index) + m.index_count > scene.indices.size()) __builtin_trap();
      for (uint32_t i = m.first_index; i < m.first_index + m.index_count; ++i)
        if (int64_t(scene.indices[i]) + m.vertex_offset >= int64_t(scene.vertices.size())) __builtin_trap();
    }
  } catch (const Error&) {
  }
  std::filesystem::remove(file);
  return 0;
}
