#pragma once
// What every VideoEncoder refuses, the same way whichever library is behind it: each throws kairo::Error
// (invalid input) with what was wrong. Internal to encoder/.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "encoder/video_encoder.hpp"

namespace kairo::encoder_checks {

inline std::string size_text(int width, int height) {
  return std::to_string(width) + "x" + std::to_string(height);
}

// A copied picture: the encoder's size, and planes that hold an NV12 picture of it at their strides.
inline void picture(const Nv12View& p, const EncoderConfig& config) {
  if (p.width != config.width || p.height != config.height)
    throw_invalid_input("picture is " + size_text(p.width, p.height) + ", encoder expects " +
                        size_text(config.width, config.height));
  const size_t y_stride = p.y_stride ? size_t(p.y_stride) : size_t(p.width);
  const size_t uv_stride = p.uv_stride ? size_t(p.uv_stride) : size_t(p.width);
  if (y_stride < size_t(p.width) || uv_stride < size_t(p.width) ||
      p.y.size() < y_stride * size_t(p.height - 1) + size_t(p.width) ||
      p.uv.size() < uv_stride * size_t(p.height / 2 - 1) + size_t(p.width))
    throw_invalid_input("picture planes are smaller than an NV12 picture of " + size_text(p.width, p.height));
}

// A lent picture: the encoder's size, within what the picture holds.
inline void lent_picture(const HostPicture& lent, const EncodeRequest& request, const EncoderConfig& config) {
  const int width = request.picture.width, height = request.picture.height;
  if (width != config.width || height != config.height || width > lent.width || height > lent.height)
    throw_invalid_input("picture is " + size_text(width, height) + ", encoder expects " +
                        size_text(config.width, config.height) + " within the lent " +
                        size_text(lent.width, lent.height));
}

inline void bitrate(int64_t bitrate_bps) {
  if (bitrate_bps < 10'000 || bitrate_bps > 2'000'000'000)
    throw_invalid_input("bitrate out of range: " + std::to_string(bitrate_bps));
}

inline void fps(int fps) {
  if (fps < 1 || fps > 1000) throw_invalid_input("frame rate out of range: " + std::to_string(fps));
}

inline void resolution(int width, int height) {
  if (width <= 0 || height <= 0 || width % 2 || height % 2 || width > 8192 || height > 8192)
    throw_invalid_input("resolution must be even and at most 8192x8192");
}

}  // namespace kairo::encoder_checks
