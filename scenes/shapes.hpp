#pragma once
// Primitive meshes with normals and UVs, centred on the origin, CCW front faces (glTF convention).
#include "scenes/gltf_builder.hpp"

namespace kairo::scenes {

MeshGeometry box(const glm::vec3& size);
// A plane in XZ facing +Y, UVs repeating `uv_repeat` times over it.
MeshGeometry floor_plane(float width, float depth, float uv_repeat);
// A quad in XY facing +Z.
MeshGeometry quad(float width, float height, float uv_repeat_x = 1.0f, float uv_repeat_y = 1.0f);
MeshGeometry sphere(float radius, int rings, int segments);
MeshGeometry cylinder(float radius, float height, int segments);

}  // namespace kairo::scenes
