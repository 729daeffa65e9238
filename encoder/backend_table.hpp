#pragma once
// Encoder backends as data: one row per (backend, codec) with FFmpeg's encoder name and the private options
// that make it low-latency, each with its reason. Probe order is the table order within a codec.
#include <string>
#include <vector>

#include "encoder/video_encoder.hpp"

namespace kairo {

enum class BackendFamily { kNvenc, kVaapi, kSoftware };
// Which library drives the encoder: libavcodec, or libx264 itself (encoder/x264_encoder.hpp: what FFmpeg's
// wrapper cannot do).
enum class EncoderLibrary { kLibavcodec, kLibx264 };

struct EncoderOption {
  const char* key;
  const char* value;  // "{slices}", "{threads}" are substituted from the config
  const char* reason;
};

struct BackendSpec {
  const char* backend;
  Codec codec;
  const char* ffmpeg_encoder;
  BackendFamily family;
  bool reconfigures_bitrate;  // FFmpeg applies bit_rate changes between frames without reopening
  bool takes_nv12;            // accepts NV12 system frames (else planar yuv420p, de-interleaved by us)
  bool max_rate_is_target;    // CBR expressed as max rate = target (SVT-AV1 wants max rate unset instead)
  std::vector<EncoderOption> options;
  EncoderLibrary library;
  // How a client's loss is repaired ("reference invalidation", "IDR"), and why: key "recovery".
  EncoderOption recovery;
};

const std::vector<BackendSpec>& backend_table();

// An option's value with "{slices}", "{threads}" and "{filler}" filled in from the config.
std::string option_text(const char* value, const EncoderConfig& config);

}  // namespace kairo
