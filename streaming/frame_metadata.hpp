#pragma once
// What travels in front of every encoded frame: the exact per-eye poses and FOVs it was rendered with, the
// pose it answers, the foveation it was squeezed with, and its timestamps at every node stage. With it the
// client can reproject the residual pose error, undo foveation, and measure each stage of latency (node
// stages in the node's clock, converted with the clock offset the transport keeps) instead of inferring it.
// Fixed little-endian layout: parsing is a bounds check and loads, no allocation.
#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "core/foveation.hpp"
#include "core/pose.hpp"

namespace kairo {

struct FrameMetadata {
  uint64_t frame_id = 0;
  uint64_t pose_id = 0;
  int64_t pose_sample_ns = 0;   // client clock: when the client sampled the pose
  int64_t display_time_ns = 0;  // client clock: the display time the pose was predicted to
  // Node clock.
  int64_t pose_received_ns = 0, render_start_ns = 0, render_end_ns = 0, encode_start_ns = 0,
          encode_end_ns = 0;
  StereoView view;         // exactly what was rendered (after prediction)
  uint16_t eye_width = 0;  // rendered size of one eye
  uint16_t eye_height = 0;
  uint16_t coded_width = 0;  // one eye's size in the coded picture (smaller than rendered when foveated)
  uint16_t coded_height = 0;
  FoveationParams foveation{};
  bool keyframe = false;
  // A repair after a loss (not a keyframe): predicted only from frames before this id, so it repairs a
  // client's reference chain that broke at this id or later (AccessUnit::repairs_from).
  std::optional<uint64_t> repairs_from{};
  // The end of an intra-refresh wave that began at this id (AccessUnit::refreshed_from). Never with
  // repairs_from: the two share one field on the wire.
  std::optional<uint64_t> refreshed_from{};
  uint64_t room_version = 0;  // the room state the frame shows (RoomStateMessage::version); 0: no room
  static constexpr size_t kSize = 4 + 2 * 8 + 7 * 8 + 2 * 11 * 4 + 4 * 2 + 6 * 4 + 4 + 8 + 8;
};

size_t write(const FrameMetadata& m, std::span<uint8_t> out);  // returns kSize; out must hold it
// Refuses a wrong magic, non-finite values, sizes of zero and coded sizes above the rendered ones.
std::optional<FrameMetadata> read_frame_metadata(std::span<const uint8_t> in);

}  // namespace kairo
