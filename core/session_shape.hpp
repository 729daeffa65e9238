#pragma once
// What a session is, defined once: the rules a session request must keep to be runnable on a node. The
// control plane refuses what breaks them (400, before placement), and the node, the reference client and
// `kairo replay` check the same rules, so a session is never placed only to fail on its node.
#include <optional>
#include <string>

namespace kairo {

struct SessionShape {
  std::string scene;
  int eye_width = 0, eye_height = 0, fps = 0;
  std::string codec = "h264";
  std::optional<std::string> room{};

  static constexpr int kMinEye = 16, kMaxEye = 8192;
  // The NV12 compute pass writes 8x8 tiles and the encoders code whole macroblocks: eye sizes are multiples
  // of 8.
  static constexpr int kEyeAlignment = 8;
  static constexpr int kMinFps = 1, kMaxFps = 240;
  static constexpr size_t kMaxSceneBytes = 256, kMaxRoomBytes = 128;
};

struct ShapeProblem {
  std::string code;     // the API's error code: invalid_scene, invalid_size, invalid_fps, invalid_codec, ...
  std::string message;  // for a person: what is wrong and what is allowed
};

// nullopt when the shape keeps every rule. The codec must be one a Kairo node can encode at all (h264, hevc:
// the encoder backends' table); whether a given node can is placement's question.
std::optional<ShapeProblem> session_shape_problem(const SessionShape& shape);

// The codecs some encoder backend of Kairo produces ("h264", "hevc"); AV1 has none yet.
bool codec_is_known(const std::string& codec);

}  // namespace kairo
