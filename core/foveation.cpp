#include "core/foveation.hpp"

#include <algorithm>
#include <cmath>
#include <glm/vec2.hpp>

namespace kairo {

namespace {

// Share of the rendered size the coded picture keeps per axis: the fovea stays, the periphery shrinks by
// `strength`.
float axis_factor(float strength, float fovea_radius) {
  return 1.0f - std::clamp(strength, 0.0f, 1.0f) * (1.0f - std::clamp(fovea_radius, 0.05f, 1.0f));
}

int round_to_8(double v) {
  return std::max(16, int(std::lround(v / 8.0)) * 8);
}

}  // namespace

glm::ivec2 coded_eye_size(int eye_width, int eye_height, double resolution_scale, float foveation_strength,
                          float fovea_radius) {
  const double f = resolution_scale * axis_factor(foveation_strength, fovea_radius);
  return {std::min(eye_width, round_to_8(eye_width * f)), std::min(eye_height, round_to_8(eye_height * f))};
}

AxisWarp axis_warp(float centre, float fovea_radius, float strength, int source_pixels, int coded_pixels) {
  if (strength <= 0 || coded_pixels >= source_pixels || coded_pixels < 4 || source_pixels < 4) return {};
  const float r = std::clamp(fovea_radius, 0.05f, 1.0f);
  const float c = std::clamp(centre, -1.0f, 1.0f);
  const double source = source_pixels, coded = coded_pixels;
  // The fovea in whole rendered pixels, no longer than the coded axis leaves room for (a pixel of periphery
  // on either side at least).
  long a = std::lround((std::max(-1.0f, c - r) + 1.0) * 0.5 * source);
  long b = std::lround((std::min(1.0f, c + r) + 1.0) * 0.5 * source);
  const long room = std::max(0L, long(coded_pixels) - 2);
  if (b - a > room) {
    const long excess = (b - a) - room;
    a += excess / 2;
    b -= excess - excess / 2;
  }
  const long fovea = b - a;
  // The periphery on either side shrinks by the same factor, rounded to a whole coded pixel.
  const double periphery_source = source - double(fovea), periphery_coded = coded - double(fovea);
  const long coded_a = std::lround(double(a) * periphery_coded / std::max(1.0, periphery_source));
  AxisWarp w;
  w.a = float(double(a) / source * 2.0 - 1.0);
  w.b = float(double(b) / source * 2.0 - 1.0);
  w.coded_a = float(double(coded_a) / coded * 2.0 - 1.0);
  w.coded_b = float(double(coded_a + fovea) / coded * 2.0 - 1.0);
  return w;
}

float coded_to_source(const AxisWarp& w, float u) {
  if (u < w.coded_a) return -1.0f + (u + 1.0f) * (w.a + 1.0f) / std::max(1e-6f, w.coded_a + 1.0f);
  if (u <= w.coded_b) return w.a + (u - w.coded_a) * (w.b - w.a) / std::max(1e-6f, w.coded_b - w.coded_a);
  return w.b + (u - w.coded_b) * (1.0f - w.b) / std::max(1e-6f, 1.0f - w.coded_b);
}

float source_to_coded(const AxisWarp& w, float x) {
  if (x < w.a) return -1.0f + (x + 1.0f) * (w.coded_a + 1.0f) / std::max(1e-6f, w.a + 1.0f);
  if (x <= w.b) return w.coded_a + (x - w.a) * (w.coded_b - w.coded_a) / std::max(1e-6f, w.b - w.a);
  return w.coded_b + (x - w.b) * (1.0f - w.coded_b) / std::max(1e-6f, 1.0f - w.b);
}

}  // namespace kairo
