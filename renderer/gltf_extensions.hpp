#pragma once
// glTF extensions that assimp 5.2 does not read, decoded before it sees the file (docs/scenes.md).
//
// - EXT_meshopt_compression (glTF-Transform `meshopt`, gltfpack -c: the web's usual geometry compression):
//   assimp refuses such a file with "buffer with non-zero length missing the uri attribute". Decoded with
//   meshoptimizer's decoders and filters.
// - KHR_mesh_quantization (gltfpack's default): assimp loads the integer attributes as if they were floats
//   and draws nothing recognisable. Converted to floats; the texture-coordinate transform that gltfpack pairs
//   with quantised UVs (KHR_texture_transform) is applied to them, since Kairo's materials take none.
// - KHR_texture_basisu: refused naming the extension (Debian's archive has no Basis Universal transcoder),
//   unless the texture also names a PNG or JPEG image, which is then used.
//
// KHR_draco_mesh_compression is assimp's own and untouched here. The JSON and buffer handling is hand-written
// (what these extensions need is a few hundred lines; no glTF writer in Debian decodes them); the decoding
// itself is meshoptimizer's.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace kairo {

// A self-contained GLB (every buffer and external image inside) with the extensions above decoded, or nullopt
// when the file uses none of them and assimp can read it as it is. `max_bytes` bounds what is read and what
// is decoded. Throws InvalidInput with the reason for a malformed file, compressed data that does not decode,
// and a Basis-only texture.
std::optional<std::string> decode_gltf_extensions(const std::filesystem::path& path, uint64_t max_bytes);

// The file as one self-contained GLB whatever it uses (the extensions above decoded on the way): how
// `kairo scene upload` sends a .gltf with its buffers and images. Throws InvalidInput as above.
std::string pack_gltf(const std::filesystem::path& path, uint64_t max_bytes);

}  // namespace kairo
