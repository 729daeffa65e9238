#pragma once
// A textured luma picture panning right 3 pixels a frame: every P-frame an encoder makes of it is predicted
// from its predecessor, so a frame missing from the decoder visibly corrupts the ones after it.
#include <cmath>
#include <cstdint>
#include <vector>

namespace kairo::test {

inline std::vector<uint8_t> panning_luma(int width, int height, int frame) {
  std::vector<uint8_t> y(size_t(width) * size_t(height));
  for (int row = 0; row < height; ++row)
    for (int x = 0; x < width; ++x) {
      const int u = x + 3 * frame;
      y[size_t(row) * size_t(width) + size_t(x)] = uint8_t(
          128 + 60 * std::sin(u * 0.11) * std::cos(row * 0.07) + 40 * std::sin((u + 2 * row) * 0.031));
    }
  return y;
}

}  // namespace kairo::test
