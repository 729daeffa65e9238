// VideoEncoder on libx264 directly. The settings are the x264 row of backend_table.cpp (preset, tune and the
// x264-params string, parsed by x264 itself), so this and the libavcodec path it replaced encode alike; what
// this path adds is recovery from a loss by reference invalidation, which FFmpeg does not expose.
#include "encoder/x264_encoder.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

extern "C" {
#include <x264.h>
}

#include "core/clock.hpp"
#include "core/error.hpp"
#include "encoder/encoder_checks.hpp"
#include "encoder/host_picture_pool.hpp"

namespace kairo {
namespace {

// x264 writes to stderr unless given a logger: its warnings go to the log, and its last error is kept (per
// thread) for the exception that follows a refused open or reconfiguration.
thread_local std::string last_x264_error;
void log_x264(void*, int level, const char* format, va_list args) {
  char line[512];
  std::vsnprintf(line, sizeof(line), format, args);
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (level <= X264_LOG_ERROR)
    last_x264_error = text;
  else if (level == X264_LOG_WARNING)
    spdlog::warn("x264: {}", text);
}

std::string x264_failure(const std::string& what) {
  return "libx264: " + what + (last_x264_error.empty() ? "" : " (" + last_x264_error + ")");
}

const char* option_value(const BackendSpec& spec, const char* key) {
  for (const EncoderOption& o : spec.options)
    if (std::strcmp(o.key, key) == 0) return o.value;
  return nullptr;
}

// Frames x264 may still predict from: the reference invalidation falls back to the newest frame in it that
// the client has. 16 is H.264's maximum; it costs decoder memory, not encoding time (motion search still
// looks at one reference: x264's i_frame_reference).
constexpr int kDpbFrames = 16;

class X264Encoder final : public VideoEncoder {
 public:
  X264Encoder(const BackendSpec& spec, const EncoderConfig& config)
      : spec_(spec), config_(config), pool_(config.width, config.height) {
    backend_ = spec.backend;
    encoder_name_ = spec.ffmpeg_encoder;
    open();
  }
  ~X264Encoder() override {
    if (x264_ != nullptr) x264_encoder_close(x264_);
  }
  X264Encoder(const X264Encoder&) = delete;
  X264Encoder& operator=(const X264Encoder&) = delete;

  const AccessUnit& encode(const EncodeRequest& request) override {
    const Nv12View& p = request.picture;
    encoder_checks::picture(p, config_);
    const int y_stride = p.y_stride ? p.y_stride : p.width;
    const int uv_stride = p.uv_stride ? p.uv_stride : p.width;
    ++pictures_copied_;  // x264 copies the picture into its own frame during the call
    return encode_planes(p.y.data(), y_stride, p.uv.data(), uv_stride, request, steady_now_ns());
  }

  void set_bitrate(int64_t bitrate_bps) override {
    encoder_checks::bitrate(bitrate_bps);
    config_.bitrate_bps = bitrate_bps;
    reconfigure_rate();
  }
  void set_fps(int fps) override {
    encoder_checks::fps(fps);
    config_.fps = fps;
    // The time base stays; the bitrate is scaled so that each frame still gets bitrate / fps bits (as the
    // libavcodec path does): no reopen, so no keyframe.
    reconfigure_rate();
  }
  void set_resolution(int width, int height) override {
    encoder_checks::resolution(width, height);
    config_.width = width;
    config_.height = height;
    reopen_pending_ = true;
  }
  void request_keyframe() override { keyframe_pending_ = true; }

  bool invalidate_from(uint64_t first_lost_frame_id) override {
    // x264 cannot invalidate with intra refresh on.
    if (reopen_pending_ || !config_.reference_invalidation || config_.intra_refresh_frames > 0) return false;
    // A lost IDR (or anything before it) leaves nothing to predict from, and a client that never had it
    // needs an IDR to start from, not the I-frame x264 would make.
    if (!last_idr_frame_id_ || first_lost_frame_id <= *last_idr_frame_id_) return false;
    // The oldest frame encoded at or after the lost one (frame ids grow with pts). Frames older than the
    // ones remembered cannot be named, so a loss reaching back past them takes a keyframe.
    const int64_t oldest = std::max<int64_t>(0, next_pts_ - int64_t(kRemembered));
    int64_t from = -1;
    for (int64_t pts = oldest; pts < next_pts_ && from < 0; ++pts)
      if (frame_of_pts_[size_t(pts) % kRemembered] >= first_lost_frame_id) from = pts;
    if (from < 0 || (from == oldest && oldest > 0)) return false;
    if (x264_encoder_invalidate_reference(x264_, from) < 0) return false;
    repair_from_ = first_lost_frame_id;
    return true;
  }

  bool refreshes_continuously() const override { return config_.intra_refresh_frames > 0; }

  std::optional<HostPicture> acquire_host_picture(size_t alignment) override {
    // x264 copies a picture during the encode call: a slot is free again once it is taken back.
    return pool_.lend(
        alignment, [](int) { return false; }, [] {});
  }

  const AccessUnit& encode_host_picture(const HostPicture& picture, const EncodeRequest& request) override {
    pool_.slot_of(picture);  // throws for a picture this encoder did not lend
    uint8_t* memory = picture.data;
    try {  // the picture goes back to the pool whatever happens
      encoder_checks::lent_picture(picture, request, config_);
      ++pictures_in_place_;
      const AccessUnit& au =
          encode_planes(memory + picture.y_offset, int(picture.y_pitch), memory + picture.uv_offset,
                        int(picture.uv_pitch), request, steady_now_ns());
      release_host_picture(picture);  // x264 copied it
      return au;
    } catch (...) {
      release_host_picture(picture);
      throw;
    }
  }

  void release_host_picture(const HostPicture& picture) override { pool_.take_back(picture); }

  EncoderCounters counters() const override {
    return EncoderCounters{.pictures_copied = pictures_copied_, .pictures_in_place = pictures_in_place_};
  }
  const std::string& backend() const override { return backend_; }
  const std::string& encoder_name() const override { return encoder_name_; }
  bool reconfigures_in_place() const override { return true; }
  const EncoderConfig& config() const override { return config_; }

 private:
  const AccessUnit& encode_planes(const uint8_t* y, int y_stride, const uint8_t* uv, int uv_stride,
                                  const EncodeRequest& request, int64_t start_ns) {
    if (reopen_pending_) open();
    bool keyframe = request.keyframe || keyframe_pending_ || next_pts_ == 0;
    x264_picture_t in;
    x264_picture_init(&in);
    in.img.i_csp = X264_CSP_NV12;
    in.img.i_plane = 2;
    in.img.i_stride[0] = y_stride;
    in.img.i_stride[1] = uv_stride;
    in.img.plane[0] = const_cast<uint8_t*>(y);  // x264 only reads its input
    in.img.plane[1] = const_cast<uint8_t*>(uv);
    in.i_pts = next_pts_;
    in.i_type = keyframe ? X264_TYPE_IDR : X264_TYPE_AUTO;
    x264_picture_t out;
    x264_nal_t* nals = nullptr;
    int count = 0;
    last_x264_error.clear();
    const int bytes = x264_encoder_encode(x264_, &nals, &count, &in, &out);
    if (bytes < 0) throw_runtime(x264_failure("encode failed"));
    if (bytes == 0 || count == 0)
      throw_runtime("libx264 held a frame back: it is not configured for zero-delay encoding");
    frame_of_pts_[size_t(next_pts_) % kRemembered] = request.frame_id;
    ++next_pts_;
    keyframe_pending_ = false;
    au_.frame_id = request.frame_id;
    au_.pose_id = request.pose_id;
    au_.eye = request.eye;
    // An I-frame references nothing before it: x264 makes one when an invalidation left no reference.
    au_.keyframe = IS_X264_TYPE_I(out.i_type);
    if (out.i_type == X264_TYPE_IDR) last_idr_frame_id_ = request.frame_id;
    au_.repairs_from = au_.keyframe ? std::nullopt : repair_from_;
    repair_from_.reset();
    au_.refreshed_from = follow_refresh_wave(out, request.frame_id);
    // x264 guarantees the NAL payloads of one call are sequential in memory.
    au_.data = std::span<const uint8_t>(nals[0].p_payload, size_t(bytes));
    au_.encode_start_ns = start_ns;
    au_.encode_end_ns = steady_now_ns();
    return au_;
  }

  // Intra refresh: x264 flags a wave's first frame as a keyframe that is not an I-frame (and puts a recovery
  // point SEI on it); the picture is whole again `time_to_recovery` frames later, x264's own count in that
  // SEI: min(macroblock columns - 1, keyint) - 1. That frame is marked with the wave's first frame.
  std::optional<uint64_t> follow_refresh_wave(const x264_picture_t& out, uint64_t frame_id) {
    if (config_.intra_refresh_frames <= 0) return std::nullopt;
    if (IS_X264_TYPE_I(out.i_type)) {
      wave_frames_left_ = -1;  // a keyframe: no wave in progress
      return std::nullopt;
    }
    if (out.b_keyframe) {
      wave_start_ = frame_id;
      const int columns = (config_.width + 15) / 16;
      wave_frames_left_ = std::max(0, std::min(columns - 1, config_.intra_refresh_frames) - 1);
    } else if (wave_frames_left_ > 0) {
      --wave_frames_left_;
    } else {
      return std::nullopt;
    }
    if (wave_frames_left_ != 0) return std::nullopt;
    wave_frames_left_ = -1;
    return wave_start_;
  }

  // The target as x264 must be told it (kbit/s): scaled from the rate frames come at to the rate x264 was
  // opened with, so that each frame gets bitrate / fps bits; a VBV of 1.5 frames (as the libavcodec path).
  void apply_rate(x264_param_t& p) const {
    const int64_t bitrate = config_.bitrate_bps * opened_fps_ / std::max(1, config_.fps);
    const int kbps = int(std::max<int64_t>(1, bitrate / 1000));
    p.rc.i_rc_method = X264_RC_ABR;
    p.rc.i_bitrate = kbps;
    p.rc.i_vbv_max_bitrate = kbps;
    p.rc.i_vbv_buffer_size =
        int(std::max<int64_t>(1, int64_t(double(config_.bitrate_bps) * 1.5 / config_.fps / 1000.0)));
  }

  void reconfigure_rate() {
    if (x264_ == nullptr || reopen_pending_) return;  // applied when it opens
    x264_param_t p;
    x264_encoder_parameters(x264_, &p);
    apply_rate(p);
    last_x264_error.clear();
    if (x264_encoder_reconfig(x264_, &p) < 0) throw_runtime(x264_failure("rate reconfiguration refused"));
  }

  void open() {
    reopen_pending_ = false;
    if (config_.width <= 0 || config_.height <= 0 || config_.width % 2 || config_.height % 2)
      throw_invalid_input("encoder picture size must be positive and even, got " +
                          std::to_string(config_.width) + "x" + std::to_string(config_.height));
    if (x264_ != nullptr) {
      x264_encoder_close(x264_);
      x264_ = nullptr;
    }
    last_x264_error.clear();
    x264_param_t p;
    if (x264_param_default_preset(&p, option_value(spec_, "preset"), option_value(spec_, "tune")) < 0)
      throw_runtime(x264_failure("unknown preset or tune"));
    p.pf_log = log_x264;
    p.i_log_level = X264_LOG_WARNING;
    if (const char* params = option_value(spec_, "x264-params"))
      parse_params(p, option_text(params, config_));
    p.i_csp = X264_CSP_NV12;
    p.i_bitdepth = 8;
    p.i_width = config_.width;
    p.i_height = config_.height;
    opened_fps_ = config_.fps;
    p.i_fps_num = uint32_t(config_.fps);
    p.i_fps_den = 1;
    p.i_timebase_num = 1;
    p.i_timebase_den = uint32_t(config_.fps);
    p.b_vfr_input = 0;
    p.i_threads = config_.threads;  // 0: x264 chooses (X264_THREADS_AUTO)
    p.i_bframe = 0;                 // B-frames need future frames: latency
    p.b_annexb = 1;
    p.vui.b_fullrange = 0;  // BT.709 limited range, as the renderer's NV12 pass writes
    p.vui.i_colorprim = 1;
    p.vui.i_transfer = 1;
    p.vui.i_colmatrix = 1;
    if (config_.intra_refresh_frames > 0) {
      p.b_intra_refresh = 1;  // a wave over that many frames instead of keyframes
      p.i_keyint_max = config_.intra_refresh_frames;
    } else if (config_.reference_invalidation) {
      p.i_dpb_size = kDpbFrames;
    }
    apply_rate(p);
    if (!config_.h264_profile.empty() && x264_param_apply_profile(&p, config_.h264_profile.c_str()) < 0)
      throw_invalid_input(x264_failure("profile \"" + config_.h264_profile + "\" refused"));
    x264_ = x264_encoder_open(&p);
    x264_param_cleanup(&p);
    if (x264_ == nullptr) throw_runtime(x264_failure("open failed"));
    next_pts_ = 0;
    wave_frames_left_ = -1;
    repair_from_.reset();
    last_idr_frame_id_.reset();
  }

  // "key=value:key=value", as x264's CLI and FFmpeg's x264-params take it.
  static void parse_params(x264_param_t& p, const std::string& text) {
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find(':', start);
      if (end == std::string::npos) end = text.size();
      const std::string item = text.substr(start, end - start);
      start = end + 1;
      if (item.empty()) continue;
      const size_t equals = item.find('=');
      const std::string key = item.substr(0, equals);
      const std::string value = equals == std::string::npos ? "1" : item.substr(equals + 1);
      if (x264_param_parse(&p, key.c_str(), value.c_str()) < 0)
        throw_runtime("libx264: bad parameter " + item);
    }
  }

  const BackendSpec& spec_;
  EncoderConfig config_;
  std::string backend_, encoder_name_;
  x264_t* x264_ = nullptr;
  int opened_fps_ = 30;
  int64_t next_pts_ = 0;  // x264's pts: one per frame encoded since it opened
  bool keyframe_pending_ = true;
  bool reopen_pending_ = false;
  std::optional<uint64_t> repair_from_;  // the next frame repairs a loss from this frame on
  std::optional<uint64_t> last_idr_frame_id_;
  uint64_t wave_start_ = 0;    // the intra-refresh wave in progress began at this frame
  int wave_frames_left_ = -1;  // frames until it is whole; -1: none in progress
  // The frame id of each of the last pts, to turn a lost frame's id into the pts x264 invalidates from.
  static constexpr size_t kRemembered = 64;
  std::array<uint64_t, kRemembered> frame_of_pts_{};
  AccessUnit au_;

  HostPicturePool pool_;  // pictures lent to the renderer (zero copy into the encoder)
  std::atomic<uint64_t> pictures_copied_{0}, pictures_in_place_{0};
};

}  // namespace

std::unique_ptr<VideoEncoder> open_x264_encoder(const BackendSpec& spec, const EncoderConfig& config) {
  return std::make_unique<X264Encoder>(spec, config);
}

}  // namespace kairo
