#include "renderer/mesh_lod.hpp"

#include <meshoptimizer.h>

#include <algorithm>
#include <cmath>

namespace kairo {
namespace {

constexpr uint32_t kMinLodTriangles = 256;  // smaller meshes cost less to draw than to choose for
constexpr float kMaxRelativeError =
    0.05f;  // of the mesh's extent: past that a level looks like another shape

}  // namespace

void build_mesh_lods(MeshData& mesh, std::span<const Vertex> vertices, std::vector<uint32_t>& indices) {
  mesh.lods[0] = MeshLod{.first_index = mesh.first_index, .index_count = mesh.index_count, .error = 0.0f};
  mesh.lod_count = 1;
  if (vertices.empty() || mesh.index_count == 0) return;
  glm::vec3 low = vertices[0].position, high = low;
  for (const Vertex& v : vertices) low = glm::min(low, v.position), high = glm::max(high, v.position);
  mesh.center = (low + high) * 0.5f;
  mesh.radius = glm::length(high - low) * 0.5f;
  if (mesh.index_count / 3 < kMinLodTriangles) return;

  const float* positions = &vertices[0].position.x;
  const float scale = meshopt_simplifyScale(positions, vertices.size(), sizeof(Vertex));
  // Each level is simplified from the full mesh (not from the previous level): errors do not accumulate.
  std::vector<uint32_t> full(indices.begin() + mesh.first_index,
                             indices.begin() + mesh.first_index + mesh.index_count);
  std::vector<uint32_t> simplified(full.size());
  size_t previous = full.size();
  for (int level = 1; level < kMaxLods; ++level) {
    const size_t target = previous / 2 / 3 * 3;
    float relative_error = 0.0f;
    const size_t count =
        meshopt_simplify(simplified.data(), full.data(), full.size(), positions, vertices.size(),
                         sizeof(Vertex), target, kMaxRelativeError, 0, &relative_error);
    if (count == 0 || count > previous * 4 / 5) break;  // the error bound stops it: no level worth having
    meshopt_optimizeVertexCache(simplified.data(), simplified.data(), count, vertices.size());
    mesh.lods[size_t(level)] = MeshLod{.first_index = uint32_t(indices.size()),
                                       .index_count = uint32_t(count),
                                       .error = relative_error * scale};
    indices.insert(indices.end(), simplified.begin(), simplified.begin() + ptrdiff_t(count));
    mesh.lod_count = uint32_t(level + 1);
    previous = count;
  }
}

int select_lod(std::span<const float> world_errors, int current, float distance, float pixels_per_unit,
               float threshold_pixels) {
  const int levels = int(world_errors.size());
  if (threshold_pixels <= 0.0f || levels <= 1) return 0;
  const float pixels_per_world_error = pixels_per_unit / std::max(distance, 1e-4f);
  const auto projected = [&](int level) { return world_errors[size_t(level)] * pixels_per_world_error; };
  int level = std::clamp(current, 0, levels - 1);
  while (level > 0 && projected(level) > threshold_pixels) --level;
  while (level + 1 < levels && projected(level + 1) < threshold_pixels * 0.5f) ++level;
  return level;
}

}  // namespace kairo
