#include "node/quality_controller.hpp"

#include <algorithm>
#include <cmath>

#include "core/foveation.hpp"

namespace kairo {

namespace {
constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kWarmUpNs = kSecond;
constexpr double kScales[] = {1.0, 0.75, 0.5};
constexpr float kFoveationStep = 0.3f, kFoveationMax = 0.6f;
}  // namespace

QualityController::QualityController(const QualityCaps& caps, int eye_width, int eye_height,
                                     int64_t initial_bitrate_bps)
    : caps_(caps), eye_width_(eye_width), eye_height_(eye_height) {
  settings_.fps = caps.max_fps;
  settings_.bitrate_bps =
      caps.max_bitrate_bps ? std::min(initial_bitrate_bps, *caps.max_bitrate_bps) : initial_bitrate_bps;
  if (const int64_t ceiling = picture_ceiling_bps(); ceiling > 0 && settings_.bitrate_bps > ceiling) {
    settings_.bitrate_bps = ceiling;
    settings_.limited_by = BitrateLimit::kPicture;
  }
  decisions_.reserve(8);
}

const char* bitrate_limit_name(BitrateLimit limit) {
  switch (limit) {
    case BitrateLimit::kInitial:
      return "initial";
    case BitrateLimit::kLink:
      return "link";
    case BitrateLimit::kPicture:
      return "picture";
    case BitrateLimit::kCap:
      return "cap";
  }
  return "initial";
}

// The ceiling counts the pixels actually coded: foveation and resolution scale shrink the picture, and what
// it needs with them.
int64_t QualityController::picture_ceiling_bps() const {
  if (caps_.picture_ceiling_bpp <= 0) return 0;
  const glm::ivec2 coded =
      coded_eye_size(eye_width_, eye_height_, settings_.resolution_scale, settings_.foveation);
  return int64_t(caps_.picture_ceiling_bpp * 2.0 * double(coded.x) * double(coded.y) * settings_.fps);
}

double QualityController::bits_per_pixel(int64_t bitrate, int fps, double scale) const {
  const double pixels = 2.0 * eye_width_ * eye_height_ * scale * scale;
  return double(bitrate) / (pixels * std::max(1, fps));
}

void QualityController::change(const char* knob, double from, double to, const char* reason) {
  decisions_.push_back(QualityDecision{knob, from, to, reason});
}

const std::vector<QualityDecision>& QualityController::update(const QualityInputs& in) {
  decisions_.clear();
  // 1. Bitrate: the least of what the transport can carry, what the picture needs, and the control plane's
  // cap.
  int64_t bitrate = in.transport_target_bps > 0 ? in.transport_target_bps : settings_.bitrate_bps;
  const char* reason = "bandwidth_estimate";
  BitrateLimit limit = in.transport_target_bps > 0 ? BitrateLimit::kLink : settings_.limited_by;
  if (const int64_t ceiling = picture_ceiling_bps(); ceiling > 0 && bitrate > ceiling) {
    bitrate = ceiling;
    reason = "picture_ceiling";
    limit = BitrateLimit::kPicture;
  }
  if (caps_.max_bitrate_bps && bitrate > *caps_.max_bitrate_bps) {
    bitrate = *caps_.max_bitrate_bps;
    reason = "control_plane_cap";
    limit = BitrateLimit::kCap;
  }
  settings_.limited_by = limit;
  // Ignore changes under 5 %: every reconfiguration costs the encoder something, and estimates wobble.
  const double relative = std::abs(double(bitrate - settings_.bitrate_bps)) / double(settings_.bitrate_bps);
  if (relative > 0.05 || (caps_.max_bitrate_bps && settings_.bitrate_bps > *caps_.max_bitrate_bps)) {
    change("bitrate", double(settings_.bitrate_bps), double(bitrate), reason);
    settings_.bitrate_bps = bitrate;
  }

  // 2. Frame rate against node load and client decode time: a pipeline whose slowest stage (or the client's
  // decoder) takes more than 90 % of the frame interval for half a second cannot hold that rate.
  // Not in the session's first second: its first frames render with cold caches (pipelines, first uploads,
  // the encoder's first frames), and the README demo's node judged its load on them, 0.8 s in, and held 17-21
  // fps where it had steady room for 23.
  if (first_update_ns_ < 0) first_update_ns_ = in.now_ns;
  const bool warmed_up = in.now_ns - first_update_ns_ >= kWarmUpNs;
  const double interval_ms = 1000.0 / settings_.fps;
  const double busiest_ms = std::max(in.slowest_stage_ms, in.client_decode_ms);
  if (warmed_up && busiest_ms > 0.9 * interval_ms && settings_.fps > caps_.min_fps) {
    if (overloaded_since_ < 0) overloaded_since_ = in.now_ns;
    if (in.now_ns - overloaded_since_ >= kSecond / 2) {
      const int achievable = int(std::floor(0.9 * 1000.0 / busiest_ms));
      const int fps = std::clamp(achievable, caps_.min_fps, settings_.fps - 1);
      change("fps", settings_.fps, fps,
             in.client_decode_ms > in.slowest_stage_ms ? "client_decode" : "node_load");
      settings_.fps = fps;
      overloaded_since_ = -1;
      relaxed_since_ = -1;
    }
  } else {
    overloaded_since_ = -1;
  }
  // Back up when one step up (10 fps) would still leave 40 % headroom, for three seconds.
  const int next_fps = std::min(caps_.max_fps, settings_.fps + 10);
  if (next_fps > settings_.fps && busiest_ms < 0.6 * 1000.0 / next_fps &&
      bits_per_pixel(settings_.bitrate_bps, next_fps, settings_.resolution_scale) > kStarvedBpp) {
    if (relaxed_since_ < 0) relaxed_since_ = in.now_ns;
    if (in.now_ns - relaxed_since_ >= 3 * kSecond) {
      change("fps", settings_.fps, next_fps, "headroom");
      settings_.fps = next_fps;
      relaxed_since_ = -1;
    }
  } else {
    relaxed_since_ = -1;
  }
  if (!caps_.foveation_available && settings_.foveation > 0) {
    change("foveation", settings_.foveation, 0, "control_plane_cap");
    settings_.foveation = 0;
  }
  if (settings_.fps > caps_.max_fps) {
    change("fps", settings_.fps, caps_.max_fps, "control_plane_cap");
    settings_.fps = caps_.max_fps;
  }

  // 3. Starved picture: spend fewer pixels. One structural change per second at most, so that each one's
  // effect shows in the estimate before the next.
  const double bpp = bits_per_pixel(settings_.bitrate_bps, settings_.fps, settings_.resolution_scale);
  const bool settled = last_structural_change_ < 0 || in.now_ns - last_structural_change_ >= kSecond;
  if (bpp < kStarvedBpp) {
    headroom_since_ = -1;
    if (starved_since_ < 0) starved_since_ = in.now_ns;
    if (settled && in.now_ns - starved_since_ >= kSecond / 2) {
      if (caps_.foveation_available && settings_.foveation < kFoveationMax) {
        const float to = std::min(kFoveationMax, settings_.foveation + kFoveationStep);
        change("foveation", settings_.foveation, to, "starved");
        settings_.foveation = to;
      } else if (settings_.resolution_scale > kScales[2]) {
        const double to = settings_.resolution_scale > kScales[1] ? kScales[1] : kScales[2];
        change("resolution_scale", settings_.resolution_scale, to, "starved");
        settings_.resolution_scale = to;
      } else if (settings_.fps > caps_.min_fps) {
        const int to = std::max(caps_.min_fps, settings_.fps * 2 / 3);
        change("fps", settings_.fps, to, "starved");
        settings_.fps = to;
      }
      last_structural_change_ = in.now_ns;
      starved_since_ = -1;
    }
  } else if (bpp > kHeadroomBpp) {
    starved_since_ = -1;
    if (headroom_since_ < 0) headroom_since_ = in.now_ns;
    if (settled && in.now_ns - headroom_since_ >= 3 * kSecond) {
      if (settings_.resolution_scale < 1.0) {
        const double to = settings_.resolution_scale < kScales[1] ? kScales[1] : kScales[0];
        change("resolution_scale", settings_.resolution_scale, to, "headroom");
        settings_.resolution_scale = to;
      } else if (settings_.foveation > 0) {
        const float to = std::max(0.0f, settings_.foveation - kFoveationStep);
        change("foveation", settings_.foveation, to, "headroom");
        settings_.foveation = to;
      }
      last_structural_change_ = in.now_ns;
      headroom_since_ = -1;
    }
  } else {
    starved_since_ = headroom_since_ = -1;
  }
  return decisions_;
}

}  // namespace kairo
