#pragma once
// The x264 backend on libx264 itself rather than through libavcodec: FFmpeg's wrapper cannot tell x264 that
// the client lost a frame (x264_encoder_invalidate_reference), which is how a loss is repaired with a P-frame
// predicted from the last frame the client has, instead of a keyframe. Internal to encoder/.
#include <memory>

#include "encoder/backend_table.hpp"
#include "encoder/video_encoder.hpp"

namespace kairo {

// Throws kairo::Error when x264 refuses the configuration (with x264's own message).
std::unique_ptr<VideoEncoder> open_x264_encoder(const BackendSpec& spec, const EncoderConfig& config);

}  // namespace kairo
