#include "scenes/shapes.hpp"

#include <cmath>

namespace kairo::scenes {
namespace {
constexpr float kPi = 3.14159265358979f;

void add_quad(MeshGeometry& g, glm::vec3 origin, glm::vec3 u, glm::vec3 v, glm::vec2 uv_scale) {
  const glm::vec3 normal = glm::normalize(glm::cross(u, v));
  const uint32_t base = uint32_t(g.positions.size());
  const glm::vec2 corners[4] = {{0, 0}, {1, 0}, {1, 1}, {0, 1}};
  for (const glm::vec2& c : corners) {
    g.positions.push_back(origin + u * c.x + v * c.y);
    g.normals.push_back(normal);
    g.uvs.push_back(glm::vec2(c.x, 1.0f - c.y) * uv_scale);  // glTF: v grows downwards in the image
  }
  for (uint32_t i : {0u, 1u, 2u, 0u, 2u, 3u}) g.indices.push_back(base + i);
}
}  // namespace

MeshGeometry box(const glm::vec3& size) {
  MeshGeometry g;
  const glm::vec3 h = size * 0.5f;
  add_quad(g, {-h.x, -h.y, h.z}, {size.x, 0, 0}, {0, size.y, 0}, {1, 1});   // +Z
  add_quad(g, {h.x, -h.y, -h.z}, {-size.x, 0, 0}, {0, size.y, 0}, {1, 1});  // -Z
  add_quad(g, {h.x, -h.y, h.z}, {0, 0, -size.z}, {0, size.y, 0}, {1, 1});   // +X
  add_quad(g, {-h.x, -h.y, -h.z}, {0, 0, size.z}, {0, size.y, 0}, {1, 1});  // -X
  add_quad(g, {-h.x, h.y, h.z}, {size.x, 0, 0}, {0, 0, -size.z}, {1, 1});   // +Y
  add_quad(g, {-h.x, -h.y, -h.z}, {size.x, 0, 0}, {0, 0, size.z}, {1, 1});  // -Y
  return g;
}

MeshGeometry floor_plane(float width, float depth, float uv_repeat) {
  MeshGeometry g;
  add_quad(g, {-width / 2, 0, depth / 2}, {width, 0, 0}, {0, 0, -depth}, {uv_repeat, uv_repeat});
  return g;
}

MeshGeometry quad(float width, float height, float uv_repeat_x, float uv_repeat_y) {
  MeshGeometry g;
  add_quad(g, {-width / 2, -height / 2, 0}, {width, 0, 0}, {0, height, 0}, {uv_repeat_x, uv_repeat_y});
  return g;
}

MeshGeometry sphere(float radius, int rings, int segments) {
  MeshGeometry g;
  for (int r = 0; r <= rings; ++r) {
    const float theta = kPi * float(r) / float(rings);
    for (int s = 0; s <= segments; ++s) {
      const float phi = 2.0f * kPi * float(s) / float(segments);
      const glm::vec3 n(std::sin(theta) * std::cos(phi), std::cos(theta), -std::sin(theta) * std::sin(phi));
      g.positions.push_back(n * radius);
      g.normals.push_back(n);
      g.uvs.push_back({float(s) / float(segments), float(r) / float(rings)});
    }
  }
  const uint32_t stride = uint32_t(segments + 1);
  for (int r = 0; r < rings; ++r)
    for (int s = 0; s < segments; ++s) {
      const uint32_t a = uint32_t(r) * stride + uint32_t(s), b = a + stride;
      for (uint32_t i : {a, b, a + 1, a + 1, b, b + 1}) g.indices.push_back(i);
    }
  return g;
}

MeshGeometry cylinder(float radius, float height, int segments) {
  MeshGeometry g;
  for (int side = 0; side < 2; ++side)
    for (int s = 0; s <= segments; ++s) {
      const float phi = 2.0f * kPi * float(s) / float(segments);
      const glm::vec3 n(std::cos(phi), 0.0f, -std::sin(phi));
      g.positions.push_back(n * radius + glm::vec3(0, side == 0 ? -height / 2 : height / 2, 0));
      g.normals.push_back(n);
      g.uvs.push_back({float(s) / float(segments), side == 0 ? 1.0f : 0.0f});
    }
  const uint32_t stride = uint32_t(segments + 1);
  for (int s = 0; s < segments; ++s) {
    const uint32_t a = uint32_t(s), b = a + stride;
    for (uint32_t i : {a, a + 1, b, b, a + 1, b + 1}) g.indices.push_back(i);
  }
  return g;
}

}  // namespace kairo::scenes
