#include "scenes/procedural_textures.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace kairo::scenes {
namespace {

Texture blank(int size) {
  return Texture{size, size, std::vector<uint8_t>(size_t(size) * size * 4, 255)};
}

void put(Texture& t, int x, int y, float r, float g, float b) {
  uint8_t* p = &t.rgba[(size_t(y) * t.width + x) * 4];
  p[0] = uint8_t(std::clamp(r, 0.0f, 1.0f) * 255.0f + 0.5f);
  p[1] = uint8_t(std::clamp(g, 0.0f, 1.0f) * 255.0f + 0.5f);
  p[2] = uint8_t(std::clamp(b, 0.0f, 1.0f) * 255.0f + 0.5f);
  p[3] = 255;
}

bool mortar(float u, float v) {  // 8 rows of bricks, alternate rows offset by half a brick
  const float rows = 8.0f, bricks = 4.0f;
  const float row = std::floor(v * rows);
  const float fv = v * rows - row;
  const float fu = u * bricks + (int(row) % 2 ? 0.5f : 0.0f);
  const float bu = fu - std::floor(fu);
  return fv < 0.06f || bu < 0.03f;
}

}  // namespace

Texture floor_grid(int size) {
  Texture t = blank(size);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const float u = float(x) / float(size), v = float(y) / float(size);
      const bool major = u < 0.008f || v < 0.008f;
      const bool minor = std::fmod(u * 10.0f, 1.0f) < 0.04f || std::fmod(v * 10.0f, 1.0f) < 0.04f;
      const float base = ((x / (size / 2)) + (y / (size / 2))) % 2 ? 0.55f : 0.47f;
      const float c = major ? 0.08f : minor ? base - 0.15f : base;
      put(t, x, y, c, c * 0.97f, c * 0.92f);
    }
  return t;
}

Texture brick_albedo(int size) {
  Texture t = blank(size);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> jitter(-0.06f, 0.06f);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const float u = float(x) / float(size), v = float(y) / float(size);
      if (mortar(u, v)) {
        put(t, x, y, 0.72f, 0.70f, 0.66f);
      } else {
        const float n = jitter(rng);
        put(t, x, y, 0.58f + n, 0.24f + n * 0.5f, 0.18f + n * 0.3f);
      }
    }
  return t;
}

Texture brick_normal(int size) {
  Texture t = blank(size);
  auto height = [&](int x, int y) {
    x = (x + size) % size;
    y = (y + size) % size;
    return mortar(float(x) / float(size), float(y) / float(size)) ? 0.0f : 1.0f;
  };
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const float dx = (height(x + 1, y) - height(x - 1, y)) * 0.5f;
      const float dy = (height(x, y + 1) - height(x, y - 1)) * 0.5f;
      // Image y grows downwards while tangent-space +Y (bitangent) points up the texture.
      const float nx = -dx * 2.0f, ny = dy * 2.0f, nz = 1.0f;
      const float len = std::sqrt(nx * nx + ny * ny + nz * nz);
      put(t, x, y, nx / len * 0.5f + 0.5f, ny / len * 0.5f + 0.5f, nz / len * 0.5f + 0.5f);
    }
  return t;
}

Texture zone_plate(int size) {
  Texture t = blank(size);
  const float k = 3.14159265f / float(size);  // reaches the Nyquist frequency at the edge
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const float dx = float(x - size / 2), dy = float(y - size / 2);
      const float c = 0.5f + 0.5f * std::cos(k * (dx * dx + dy * dy));
      put(t, x, y, c, c, c);
    }
  return t;
}

Texture fine_noise_text(int size, uint32_t seed) {
  Texture t = blank(size);
  std::mt19937 rng(seed);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) put(t, x, y, 0.93f, 0.92f, 0.86f);
  std::uniform_int_distribution<int> glyph(0, 15);
  const int cell = 6;
  for (int line = 2; line + cell < size; line += cell + 3)
    for (int col = 2; col + cell < size; col += cell) {
      const int bits = glyph(rng);
      if (bits == 0) continue;  // word gap
      for (int gy = 0; gy < cell - 1; ++gy)
        for (int gx = 0; gx < cell - 2; ++gx)
          if ((bits >> ((gx + gy) % 4)) & 1) put(t, col + gx, line + gy, 0.1f, 0.1f, 0.15f);
    }
  return t;
}

Texture metal_roughness_stripes(int size) {
  Texture t = blank(size);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const int stripe = x * 8 / size;
      put(t, x, y, 1.0f, 0.1f + 0.8f * float(stripe) / 7.0f, stripe % 2 ? 1.0f : 0.0f);
    }
  return t;
}

Texture checker(int size, int squares, uint32_t colour_a, uint32_t colour_b) {
  Texture t = blank(size);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const uint32_t c = ((x * squares / size) + (y * squares / size)) % 2 ? colour_a : colour_b;
      put(t, x, y, float((c >> 16) & 255) / 255.0f, float((c >> 8) & 255) / 255.0f, float(c & 255) / 255.0f);
    }
  return t;
}

}  // namespace kairo::scenes
