#pragma once
// Textures drawn in code for the project's scenes (RGBA8, rows top to bottom).
#include <cstdint>
#include <vector>

namespace kairo::scenes {

struct Texture {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgba;
};

Texture floor_grid(int size);  // tiles with 1 m lines and 10 cm subdivisions
Texture brick_albedo(int size);
Texture brick_normal(int size);  // tangent-space normal map matching brick_albedo's mortar
Texture zone_plate(int size);    // radial chirp: every spatial frequency, the hardest pattern for a codec
Texture fine_noise_text(int size, uint32_t seed);  // dense glyph-like marks on paper
Texture metal_roughness_stripes(int size);         // glTF: roughness in G, metallic in B
Texture checker(int size, int squares, uint32_t colour_a, uint32_t colour_b);

}  // namespace kairo::scenes
