#include <glm/gtc/quaternion.hpp>

#include "scenes/procedural_textures.hpp"
#include "scenes/project_scenes.hpp"
#include "scenes/shapes.hpp"

namespace kairo::scenes {
namespace {
int texture(GltfBuilder& b, const char* name, const Texture& t) {
  return b.add_png_texture(name, t.width, t.height, t.rgba);
}
glm::quat yaw(float degrees) {
  return glm::angleAxis(glm::radians(degrees), glm::vec3(0, 1, 0));
}
}  // namespace

void write_vr_room(const std::filesystem::path& path) {
  GltfBuilder b;
  const int grid = texture(b, "floor grid", floor_grid(512));
  const int brick = texture(b, "brick albedo", brick_albedo(512));
  const int brick_n = texture(b, "brick normal", brick_normal(512));
  const int zone = texture(b, "zone plate", zone_plate(1024));
  const int text = texture(b, "fine text", fine_noise_text(1024, 11));
  const int stripes = texture(b, "metal roughness stripes", metal_roughness_stripes(256));
  const int tiles = texture(b, "ceiling tiles", checker(256, 8, 0xd8d8d0, 0xc8c8c0));

  const int floor_mat = b.add_material({.name = "floor", .roughness = 0.9f, .base_color_texture = grid});
  const int brick_mat = b.add_material(
      {.name = "brick", .roughness = 0.85f, .base_color_texture = brick, .normal_texture = brick_n});
  const int plaster =
      b.add_material({.name = "plaster", .base_color = {0.78f, 0.76f, 0.72f, 1}, .roughness = 0.95f});
  const int ceiling = b.add_material({.name = "ceiling", .roughness = 0.95f, .base_color_texture = tiles});
  const int zone_mat = b.add_material({.name = "zone plate", .roughness = 0.7f, .base_color_texture = zone});
  const int text_mat = b.add_material({.name = "text wall", .roughness = 0.9f, .base_color_texture = text});
  const int mirror = b.add_material(
      {.name = "polished metal", .base_color = {0.95f, 0.93f, 0.88f, 1}, .metallic = 1, .roughness = 0.12f});
  const int brushed = b.add_material({.name = "striped metal",
                                      .base_color = {0.9f, 0.6f, 0.3f, 1},
                                      .metallic = 1,
                                      .roughness = 1,
                                      .metallic_roughness_texture = stripes});
  const int plastic =
      b.add_material({.name = "rough plastic", .base_color = {0.15f, 0.45f, 0.85f, 1}, .roughness = 0.65f});
  const int emissive = b.add_material(
      {.name = "light panel", .base_color = {0.1f, 0.1f, 0.1f, 1}, .emissive = {1.0f, 0.95f, 0.8f}});
  const int wood =
      b.add_material({.name = "table", .base_color = {0.45f, 0.3f, 0.18f, 1}, .roughness = 0.6f});

  const float half = 10.0f, height = 4.0f;
  b.add_node("floor", b.add_mesh("floor", floor_plane(2 * half, 2 * half, 20.0f), floor_mat), {});
  b.add_node(
      "ceiling", b.add_mesh("ceiling", floor_plane(2 * half, 2 * half, 10.0f), ceiling),
      {.translation = {0, height, 0}, .rotation = glm::angleAxis(glm::radians(180.0f), glm::vec3(1, 0, 0))});
  // Walls: quads face +Z before rotation, turned to face the room's centre.
  b.add_node("wall ahead", b.add_mesh("wall ahead", quad(2 * half, height), plaster),
             {.translation = {0, height / 2, -half}});
  b.add_node("wall behind", b.add_mesh("wall behind", quad(2 * half, height), plaster),
             {.translation = {0, height / 2, half}, .rotation = yaw(180)});
  b.add_node("brick wall", b.add_mesh("brick wall", quad(2 * half, height, 5.0f, 1.0f), brick_mat),
             {.translation = {-half, height / 2, 0}, .rotation = yaw(90)});
  b.add_node("wall right", b.add_mesh("wall right", quad(2 * half, height), plaster),
             {.translation = {half, height / 2, 0}, .rotation = yaw(-90)});

  // Codec stressors on free-standing boards 5 m ahead, large enough to fill much of the view.
  b.add_node("zone plate", b.add_mesh("zone plate", quad(2.5f, 2.5f), zone_mat),
             {.translation = {-1.6f, 1.6f, -5.0f}});
  b.add_node("text board", b.add_mesh("text board", quad(3.0f, 2.0f), text_mat),
             {.translation = {1.8f, 1.6f, -5.0f}});
  b.add_node("light panel", b.add_mesh("light panel", quad(1.5f, 0.4f), emissive),
             {.translation = {0.0f, 3.3f, -half + 0.01f}});

  const int cube_mesh = b.add_mesh("reference cube", box(glm::vec3(0.25f)), plastic);
  int index = 0;
  for (const ReferenceCube& c : kReferenceCubes) {
    const int material = b.add_material({.name = "reference " + std::to_string(index),
                                         .base_color = glm::vec4(c.colour, 1),
                                         .roughness = 0.5f});
    b.add_node("reference cube " + std::to_string(index),
               b.add_mesh("reference cube " + std::to_string(index), box(glm::vec3(0.25f)), material),
               {.translation = c.centre});
    ++index;
  }
  (void)cube_mesh;

  // A table with a group of spheres: a parent node carries the transform of its children.
  const int table = b.add_node("table", b.add_mesh("table top", box({1.6f, 0.05f, 0.8f}), wood),
                               {.translation = {0.0f, 0.75f, -3.0f}});
  const int leg = b.add_mesh("table leg", cylinder(0.03f, 0.75f, 16), wood);
  for (float x : {-0.75f, 0.75f})
    for (float z : {-0.35f, 0.35f}) b.add_node("leg", leg, {.translation = {x, -0.375f, z}}, table);
  b.add_node("mirror sphere", b.add_mesh("mirror sphere", sphere(0.18f, 32, 48), mirror),
             {.translation = {-0.5f, 0.205f, 0}}, table);
  b.add_node("striped sphere", b.add_mesh("striped sphere", sphere(0.18f, 32, 48), brushed),
             {.translation = {0.0f, 0.205f, 0}}, table);
  b.add_node("plastic sphere", b.add_mesh("plastic sphere", sphere(0.18f, 32, 48), plastic),
             {.translation = {0.5f, 0.205f, 0}}, table);

  // Pillars at the corners of a 3 m square: strong vertical edges for stereo.
  const int pillar = b.add_mesh("pillar", cylinder(0.15f, height, 24), plaster);
  for (float x : {-3.0f, 3.0f})
    for (float z : {-6.0f, 3.0f}) b.add_node("pillar", pillar, {.translation = {x, height / 2, z}});
  b.write_glb(path);
}

void write_stress_scene(const std::filesystem::path& path) {
  GltfBuilder b;
  const int grid = b.add_png_texture("floor grid", 256, 256, floor_grid(256).rgba);
  const int floor_mat = b.add_material({.name = "floor", .roughness = 0.9f, .base_color_texture = grid});
  b.add_node("floor", b.add_mesh("floor", floor_plane(40, 40, 40), floor_mat), {});
  int materials[8];
  for (int m = 0; m < 8; ++m)
    materials[m] = b.add_material({.name = "sphere " + std::to_string(m),
                                   .base_color = {0.2f + 0.1f * float(m), 0.9f - 0.1f * float(m), 0.5f, 1},
                                   .metallic = m % 2 ? 1.0f : 0.0f,
                                   .roughness = 0.2f + 0.1f * float(m)});
  int meshes[8];
  for (int m = 0; m < 8; ++m)
    meshes[m] = b.add_mesh("sphere " + std::to_string(m), sphere(0.4f, 32, 32), materials[m]);
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j)
      b.add_node("sphere", meshes[(i + j) % 8],
                 {.translation = {float(i) * 1.2f - 9.0f, 0.5f + 0.3f * float((i * j) % 3),
                                  -1.5f - float(j) * 1.2f}});
  b.write_glb(path);
}

void write_marker_scene(const std::filesystem::path& path, const glm::vec3& centre, float size) {
  GltfBuilder b;
  const int red = b.add_material(
      {.name = "marker", .base_color = {0, 0, 0, 1}, .roughness = 1.0f, .emissive = {1, 0, 0}});
  b.add_node("marker", b.add_mesh("marker", quad(size, size), red), {.translation = centre});
  b.write_glb(path);
}

}  // namespace kairo::scenes
