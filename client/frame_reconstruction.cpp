#include "client/frame_reconstruction.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace kairo {

namespace {

struct Ycc {
  float y, cb, cr;
};

Ycc sample(const DecodedPicture& p, float x, float y) {
  // Bilinear in luma, nearest 2x2 block in chroma (the encoder's 4:2:0 sampling).
  const float fx = std::clamp(x, 0.0f, float(p.width - 1)), fy = std::clamp(y, 0.0f, float(p.height - 1));
  const int x0 = int(fx), y0 = int(fy);
  const int x1 = std::min(x0 + 1, p.width - 1), y1 = std::min(y0 + 1, p.height - 1);
  const float ax = fx - float(x0), ay = fy - float(y0);
  auto luma = [&](int xx, int yy) { return float(p.y[size_t(yy) * p.width + xx]); };
  const float l = (luma(x0, y0) * (1 - ax) + luma(x1, y0) * ax) * (1 - ay) +
                  (luma(x0, y1) * (1 - ax) + luma(x1, y1) * ax) * ay;
  const size_t c = size_t(y0 / 2) * p.width + size_t(x0 / 2) * 2;
  return {l, float(p.uv[c]), float(p.uv[c + 1])};
}

void to_rgb(const Ycc& v, uint8_t* out) {
  const float y = (v.y - 16.0f) / 219.0f, cb = (v.cb - 128.0f) / 224.0f, cr = (v.cr - 128.0f) / 224.0f;
  const float r = y + 1.5748f * cr;
  const float g = y - 0.1873f * cb - 0.4681f * cr;
  const float b = y + 1.8556f * cb;
  out[0] = uint8_t(std::clamp(std::lround(r * 255.0f), 0L, 255L));
  out[1] = uint8_t(std::clamp(std::lround(g * 255.0f), 0L, 255L));
  out[2] = uint8_t(std::clamp(std::lround(b * 255.0f), 0L, 255L));
  out[3] = 255;
}

}  // namespace

ImageRgba8 reconstruct_stereo(const DecodedPicture& picture, const FrameMetadata& m) {
  const int cw = m.coded_width, ch = m.coded_height, w = m.eye_width, h = m.eye_height;
  if (picture.width != 2 * cw || picture.height != ch)
    throw_invalid_input("decoded picture " + std::to_string(picture.width) + "x" +
                        std::to_string(picture.height) + " does not match the frame's coded size");
  ImageRgba8 out{2 * w, h, std::vector<uint8_t>(size_t(2 * w) * h * 4)};
  for (int eye = 0; eye < 2; ++eye) {
    const FoveationParams& f = m.foveation;
    const AxisWarp wx = axis_warp(f.centre[eye].x, f.fovea_radius, f.strength, w, cw);
    const AxisWarp wy = axis_warp(f.centre[eye].y, f.fovea_radius, f.strength, h, ch);
    std::vector<float> column(
        static_cast<size_t>(w));  // coded x for each output column (the warp is separable)
    for (int x = 0; x < w; ++x) {
      const float u = source_to_coded(wx, (float(x) + 0.5f) / float(w) * 2.0f - 1.0f);
      column[size_t(x)] = (u + 1.0f) * 0.5f * float(cw) - 0.5f + float(eye * cw);
    }
    for (int y = 0; y < h; ++y) {
      const float v = source_to_coded(wy, (float(y) + 0.5f) / float(h) * 2.0f - 1.0f);
      const float cy = (v + 1.0f) * 0.5f * float(ch) - 0.5f;
      uint8_t* row = out.pixels.data() + (size_t(y) * 2 * w + size_t(eye) * w) * 4;
      for (int x = 0; x < w; ++x) {
        // Keep each eye's samples inside its own half of the side-by-side picture.
        const float cx = std::clamp(column[size_t(x)], float(eye * cw), float(eye * cw + cw - 1));
        to_rgb(sample(picture, cx, cy), row + size_t(x) * 4);
      }
    }
  }
  return out;
}

}  // namespace kairo
