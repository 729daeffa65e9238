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

AxisWarp axis_warp(float centre, float fovea_radius, float strength) {
  if (strength <= 0) return {};
  const float r = std::clamp(fovea_radius, 0.05f, 1.0f);
  const float c = std::clamp(centre, -1.0f, 1.0f);
  AxisWarp w;
  w.a = std::max(-1.0f, c - r);
  w.b = std::min(1.0f, c + r);
  // The coded picture is `factor` of the source: to keep the fovea's density its normalised length grows by
  // 1 / factor; the periphery shares what is left, in proportion to its source lengths on either side.
  const float grow = 1.0f / axis_factor(strength, r);
  const float fovea = std::min((w.b - w.a) * grow, 2.0f - 0.05f * (2.0f - (w.b - w.a)));
  const float periphery = 2.0f - (w.b - w.a);
  if (periphery < 1e-4f) return {};
  const float k = (2.0f - fovea) / periphery;
  w.coded_a = -1.0f + (w.a + 1.0f) * k;
  w.coded_b = w.coded_a + fovea;
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
