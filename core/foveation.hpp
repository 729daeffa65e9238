#pragma once
// Foveated encoding's geometry, shared by the renderer (which squeezes) and the client (which undoes it).
// Each eye's picture is warped separably, per axis, by a piecewise-linear map: the fovea (the region around
// the gaze or the fixed centre) keeps its pixel density, the periphery on either side is compressed evenly
// to fit the smaller coded picture. Coordinates are normalised -1..1 across the eye's picture.
// Hand-written: no library in Debian does this; the maps are three line segments per axis.
#include <array>
#include <glm/vec2.hpp>

namespace kairo {

struct FoveationParams {
  float strength = 0;  // 0: none .. 1: the periphery squeezed as far as the fovea allows
  std::array<glm::vec2, 2> centre{glm::vec2(0), glm::vec2(0)};  // per eye, normalised -1..1 (gaze or fixed)
  float fovea_radius = 0.4f;  // half-size of the region kept at full density, normalised
};

// One axis: the source fovea [a, b] appears at [coded_a, coded_b] in the coded picture.
struct AxisWarp {
  float a = -1, b = 1, coded_a = -1, coded_b = 1;
};

// Coded size of one eye for a rendered size, a uniform resolution scale and a foveation strength: multiples
// of 8 (encoders and the 4x2 NV12 blocks need it), never above the rendered size, at least 16.
glm::ivec2 coded_eye_size(int eye_width, int eye_height, double resolution_scale, float foveation_strength,
                          float fovea_radius = 0.4f);

// The map of one axis between a `source_pixels` rendered axis and a `coded_pixels` coded one. The fovea is
// snapped to whole pixels at both ends, so that inside it every coded pixel is exactly one rendered pixel
// (an integer offset: bilinear sampling there copies, it does not blur). Without foveation (strength 0) it
// is the identity in normalised coordinates (a uniform scale in pixels).
AxisWarp axis_warp(float centre, float fovea_radius, float strength, int source_pixels, int coded_pixels);

float coded_to_source(const AxisWarp& w, float u);
float source_to_coded(const AxisWarp& w, float x);

}  // namespace kairo
