#pragma once
// Recipes for the project's scenes. All dimensions in metres, OpenXR axes (+Y up, -Z forward).
#include <filesystem>
#include <glm/glm.hpp>

namespace kairo::scenes {

// A 20 m x 20 m x 4 m room. The user stands at the origin looking down -Z. On the floor a 1 m grid (10 cm
// subdivisions); reference cubes of 0.25 m at known distances ahead (see kReferenceCubes); spheres of varied
// materials (mirror metal, brushed metal stripes, rough plastic), an emissive panel, a normal-mapped brick
// wall on the left, and the codec stressors: a zone plate and a wall of fine text-like marks straight ahead.
void write_vr_room(const std::filesystem::path& path);

struct ReferenceCube {
  glm::vec3 centre;
  glm::vec3 colour;
};
inline constexpr ReferenceCube kReferenceCubes[] = {
    {{-0.5f, 1.5f, -1.0f}, {0.9f, 0.1f, 0.1f}},  // red, 1 m
    {{0.6f, 1.5f, -2.0f}, {0.1f, 0.8f, 0.1f}},   // green, 2 m
    {{-1.2f, 1.5f, -4.0f}, {0.1f, 0.2f, 0.9f}},  // blue, 4 m
    {{1.8f, 1.5f, -8.0f}, {0.9f, 0.8f, 0.1f}},   // yellow, 8 m
};

// At least 500k triangles in at least 200 draws: a 16 x 16 field of 2048-triangle spheres in 8 materials.
void write_stress_scene(const std::filesystem::path& path);

// A single flat, emissive red square of `size` metres facing +Z at `centre`, nothing else: for geometry
// tests.
void write_marker_scene(const std::filesystem::path& path, const glm::vec3& centre, float size);

}  // namespace kairo::scenes
