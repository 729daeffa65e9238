#pragma once
// libavcodec decoding of Kairo's access units back to 8-bit 4:2:0 pictures: used by the tests (round-trip
// quality) and by the reference client. Zero-delay: one picture out per access unit in.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "encoder/video_encoder.hpp"

namespace kairo {

struct DecodedPicture {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> y;   // width x height
  std::vector<uint8_t> uv;  // NV12 interleaved, width x height/2
};

class VideoDecoder {
 public:
  explicit VideoDecoder(Codec codec);
  ~VideoDecoder();
  // Returns false when the data decodes to no picture (e.g. a stream that starts without a keyframe);
  // throws kairo::Error on corrupt data the decoder rejects.
  bool decode(std::span<const uint8_t> access_unit, DecodedPicture& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// PSNR in dB of one plane against another of the same size (infinity when identical).
double plane_psnr(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace kairo
