// libFuzzer target: Kairo's own glTF decoding (renderer/gltf_extensions.cpp: EXT_meshopt_compression,
// KHR_mesh_quantization, KHR_texture_basisu) on its own, without assimp (whose own bugs keep the whole
// loader's fuzzer, scene_file, out of CI). The first byte picks the extension (.glb or .gltf), the rest is
// the file. Invariant: no file, or a GLB whose every buffer view lies inside its one buffer, or kairo::Error;
// never another exception, a crash, or memory past the limit. Seeds: tests/fuzz/corpus/gltf_extensions.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.hpp"
#include "renderer/gltf_extensions.hpp"
#include "tests/fuzz/scratch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const kairo::fuzz::ScratchDir scratch("kairo-gltf-fuzz-");
  const std::filesystem::path file =
      scratch.write(data[0] % 2 ? "scene.gltf" : "scene.glb", data + 1, size - 1);
  try {
    const auto glb = kairo::decode_gltf_extensions(file, 1 << 20);
    if (!glb) return 0;
    uint32_t json_length = 0, bin_length = 0;
    if (glb->size() < 28) __builtin_trap();
    std::memcpy(&json_length, glb->data() + 12, 4);
    if (20 + uint64_t(json_length) + 8 > glb->size()) __builtin_trap();
    std::memcpy(&bin_length, glb->data() + 20 + json_length, 4);
    const auto doc = nlohmann::json::parse(glb->substr(20, json_length));
    for (const auto& view : doc.value("bufferViews", nlohmann::json::array())) {
      if (view.contains("extensions") && view["extensions"].contains("EXT_meshopt_compression"))
        __builtin_trap();
      if (view.value("buffer", uint64_t(1)) != 0) __builtin_trap();
      if (view.value("byteOffset", uint64_t(0)) + view.value("byteLength", uint64_t(0)) > bin_length)
        __builtin_trap();
    }
  } catch (const kairo::Error&) {
  }
  return 0;
}
