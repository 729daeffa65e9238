#pragma once
// Every rendered frame of a replay, full size and lossless, in one file (`rendered.h264`): H.264 4:4:4 in
// RGB at QP 0 (libx264rgb, ultrafast). A later run draws full-size pictures of what changed from it. Measured
// on vr-room at 2x512^2: about 4 ms and 0.35 MB a frame, where a PNG through stb takes 70 ms and 0.5 MB.
// Any player shows the file as it is (`ffplay rendered.h264`).
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "core/image_io.hpp"
#include "encoder/video_encoder.hpp"

namespace kairo {

class FrameArchiveWriter {
 public:
  // Throws kairo::Error when the file cannot be created or this FFmpeg has no libx264rgb.
  FrameArchiveWriter(const std::filesystem::path& path, int width, int height);
  ~FrameArchiveWriter();
  FrameArchiveWriter(const FrameArchiveWriter&) = delete;
  FrameArchiveWriter& operator=(const FrameArchiveWriter&) = delete;
  void add(std::span<const uint8_t> rgba);  // width x height RGBA; alpha is not kept
  void finish();                            // drains the encoder and closes the file

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The frames at `wanted` (indices in archive order; alpha 255), read in one pass; indices past the end are
// absent from the result. Throws kairo::Error on a missing or corrupt file.
std::map<uint64_t, ImageRgba8> read_archived_frames(const std::filesystem::path& path,
                                                    const std::vector<uint64_t>& wanted);

// The same from a replay's decoded stream (`decoded.h264`, `.hevc`, `.av1`: the access units the client's
// decoder took, in order): the pictures at `wanted` (indices among the decoded frames) as grey images of
// their luma, the plane replay's PSNR and SSIM measure.
std::map<uint64_t, ImageRgba8> read_decoded_luma(const std::filesystem::path& path, Codec codec,
                                                 const std::vector<uint64_t>& wanted);

}  // namespace kairo
