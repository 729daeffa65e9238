#include "core/session_shape.hpp"

#include "core/names.hpp"

namespace kairo {

bool codec_is_known(const std::string& codec) {
  return codec == "h264" || codec == "hevc";
}

std::optional<ShapeProblem> session_shape_problem(const SessionShape& s) {
  using S = SessionShape;
  if (const auto problem = name_problem(s.scene, S::kMaxSceneBytes))
    return ShapeProblem{"invalid_scene", "scene " + *problem};
  if (s.room)
    if (const auto problem = name_problem(*s.room, S::kMaxRoomBytes))
      return ShapeProblem{"invalid_room", "room " + *problem};
  const auto eye_ok = [](int v) { return v >= S::kMinEye && v <= S::kMaxEye && v % S::kEyeAlignment == 0; };
  if (!eye_ok(s.eye_width) || !eye_ok(s.eye_height))
    return ShapeProblem{"invalid_size",
                        "eye_width and eye_height must be multiples of " + std::to_string(S::kEyeAlignment) +
                            " from " + std::to_string(S::kMinEye) + " to " + std::to_string(S::kMaxEye) +
                            ", got " + std::to_string(s.eye_width) + "x" + std::to_string(s.eye_height)};
  if (s.fps < S::kMinFps || s.fps > S::kMaxFps)
    return ShapeProblem{"invalid_fps", "fps must be " + std::to_string(S::kMinFps) + " to " +
                                           std::to_string(S::kMaxFps) + ", got " + std::to_string(s.fps)};
  if (!codec_is_known(s.codec))
    return ShapeProblem{"invalid_codec", "codec must be h264 or hevc (no Kairo encoder produces \"" +
                                             escape_for_log(s.codec) + "\")"};
  return std::nullopt;
}

}  // namespace kairo
