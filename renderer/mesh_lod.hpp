#pragma once
// Levels of detail (docs/architecture.md, #16). At load each mesh is simplified by meshoptimizer into up to
// three coarser levels (about half the triangles each), each with its geometric error. Each frame, each draw
// takes the coarsest level whose error, projected at the draw's distance from the eyes, stays under a pixel
// threshold; with hysteresis, so a level does not flip back and forth while the head moves slowly: a draw
// goes coarser only when the coarser level projects under half the threshold, finer as soon as its level
// projects over it.
#include <cstdint>
#include <span>

#include "renderer/scene_data.hpp"

namespace kairo {

// Builds mesh.lods (level 0 from first_index/index_count) and the bounding sphere, appending the coarser
// levels' indices to `indices`. `vertices` are the mesh's own (its indices are relative to them).
void build_mesh_lods(MeshData& mesh, std::span<const Vertex> vertices, std::vector<uint32_t>& indices);

// The level to draw: `current` the level drawn last frame; `world_errors` each level's error in world units;
// `distance` from the eye to the nearest point of the draw's bounding sphere (world units, > 0);
// `pixels_per_unit` what a world unit at distance 1 spans on screen. `threshold_pixels` <= 0: level 0.
int select_lod(std::span<const float> world_errors, int current, float distance, float pixels_per_unit,
               float threshold_pixels);

}  // namespace kairo
