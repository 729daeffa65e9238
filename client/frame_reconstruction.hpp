#pragma once
// Turns a decoded side-by-side NV12 picture back into the stereo RGBA image the node rendered: BT.709
// limited range to sRGB-encoded RGB, and, for foveated or scaled frames, the inverse of the node's warp
// (core/foveation.hpp) back to the rendered eye size, bilinearly.
#include "core/image_io.hpp"
#include "encoder/video_decoder.hpp"
#include "streaming/frame_metadata.hpp"

namespace kairo {

// `picture` is 2 x coded_width by coded_height; the result is 2 x eye_width by eye_height.
ImageRgba8 reconstruct_stereo(const DecodedPicture& picture, const FrameMetadata& metadata);

}  // namespace kairo
