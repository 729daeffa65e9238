// VideoEncoder on libavcodec: one class for every backend but x264 (on libx264 itself: x264_encoder.cpp); the
// differences live in backend_table.cpp (options) and in the small hardware hooks below (device probing,
// VA-API surface upload).
#include <dlfcn.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xf86drm.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/hwcontext.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
}

#include "core/clock.hpp"
#include "core/error.hpp"
#include "encoder/backend_table.hpp"
#include "encoder/encoder_checks.hpp"
#include "encoder/host_picture_pool.hpp"
#include "encoder/x264_encoder.hpp"

namespace kairo {
namespace {

std::string av_error(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof(text));
  return text;
}

// FFmpeg reports why an encoder refused to open only through its log: keep the last error line per thread
// so that a probe's reason can quote it.
thread_local std::string last_av_log_error;
void capture_av_log(void* avcl, int level, const char* format, va_list args) {
  if (level > AV_LOG_ERROR) return;
  char line[512];
  int prefix = 1;
  av_log_format_line2(avcl, level, format, args, line, sizeof(line), &prefix);
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (!text.empty()) last_av_log_error = text;
}
void install_av_log_capture() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_callback(capture_av_log);
    setenv("SVT_LOG", "0",
           0);  // SVT-AV1 prints banners and teardown chatter otherwise; stdout is for results
  });
}

struct AvCodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct AvFrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct AvPacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct AvBufferDeleter {
  void operator()(AVBufferRef* b) const { av_buffer_unref(&b); }
};

// The first DRM render node libdrm knows of ("" when there is none, as on a machine without a GPU).
std::string first_render_node() {
  drmDevicePtr devices[16];
  const int count = drmGetDevices2(0, devices, 16);
  std::string node;
  for (int i = 0; i < count && node.empty(); ++i)
    if (devices[i]->available_nodes & (1 << DRM_NODE_RENDER)) node = devices[i]->nodes[DRM_NODE_RENDER];
  if (count > 0) drmFreeDevices(devices, count);
  return node;
}

// Opens the render node through libdrm and names its kernel driver, so that a probe failure can say which
// GPU driver refused ("i915", "amdgpu", "nvidia-drm", ...). Empty when the node cannot be opened.
std::string render_node_driver(const std::string& node) {
  const int fd = open(node.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return "";
  std::string name;
  if (drmVersionPtr version = drmGetVersion(fd)) {
    name.assign(version->name, size_t(version->name_len));
    drmFreeVersion(version);
  }
  close(fd);
  return name;
}

// Cheap checks that name the missing piece before FFmpeg is asked (its own messages are vaguer).
std::string hardware_missing(const BackendSpec& spec, const EncoderConfig& config) {
  if (spec.family == BackendFamily::kNvenc) {
    for (const char* library : {"libcuda.so.1", "libnvidia-encode.so.1"}) {
      void* handle = dlopen(library, RTLD_LAZY | RTLD_LOCAL);
      if (handle == nullptr) return std::string(library) + " not found (no NVIDIA driver)";
      dlclose(handle);
    }
  }
  if (spec.family == BackendFamily::kVaapi) {
    const std::string node = config.vaapi_device.empty() ? first_render_node() : config.vaapi_device;
    if (node.empty()) return "no /dev/dri render node";
    if (access(node.c_str(), R_OK | W_OK) != 0) return node + " not accessible: " + std::strerror(errno);
    if (render_node_driver(node).empty()) return node + " is not a DRM device libdrm can open";
  }
  return "";
}

class AvVideoEncoder final : public VideoEncoder {
 public:
  AvVideoEncoder(const BackendSpec& spec, const EncoderConfig& config)
      : spec_(spec), config_(config), host_pool_(config.width, config.height) {
    backend_ = spec.backend;
    encoder_name_ = spec.ffmpeg_encoder;
    open_codec();
  }

  const AccessUnit& encode(const EncodeRequest& request) override {
    const Nv12View& p = request.picture;
    encoder_checks::picture(p, config_);
    const int64_t start_ns = steady_now_ns();  // the copy counts as encode time
    if (reopen_pending_) open_codec();         // before the copy: the frame may change size
    fill_frame(p);
    ++pictures_copied_;
    return encode_frame(frame_.get(), request, start_ns);
  }

  // Sends one host frame (the encoder's own, or a lent pool picture) and takes its access unit.
  const AccessUnit& encode_frame(AVFrame* host, const EncodeRequest& request, int64_t start_ns) {
    au_.encode_start_ns = start_ns;
    bool keyframe = request.keyframe || keyframe_pending_;
    if (reopen_pending_) open_codec();
    if (next_pts_ == 0) keyframe = true;  // the first frame after (re)opening
    AVFrame* input = host;
    if (spec_.family == BackendFamily::kVaapi) {
      av_frame_unref(hw_frame_.get());
      check(av_hwframe_get_buffer(codec_->hw_frames_ctx, hw_frame_.get(), 0), "VA-API surface");
      check(av_hwframe_transfer_data(hw_frame_.get(), host, 0), "upload to VA-API surface");
      input = hw_frame_.get();
    }
    input->pts = next_pts_++;
    input->pict_type = keyframe ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    input->key_frame = keyframe ? 1 : 0;
    check(avcodec_send_frame(codec_.get(), input), "send frame");
    return receive(request.frame_id, request.pose_id, request.eye);
  }

  const AccessUnit& receive(uint64_t frame_id, uint64_t pose_id, int eye) {
    const int received = avcodec_receive_packet(codec_.get(), packet_.get());
    if (received == AVERROR(EAGAIN))
      throw_runtime(encoder_name_ + " held a frame back: it is not configured for zero-delay encoding");
    check(received, "receive packet");
    keyframe_pending_ = false;
    au_.frame_id = frame_id;
    au_.pose_id = pose_id;
    au_.eye = eye;
    au_.keyframe = (packet_->flags & AV_PKT_FLAG_KEY) != 0;
    au_.data = std::span<const uint8_t>(packet_->data, size_t(packet_->size));
    au_.encode_end_ns = steady_now_ns();
    return au_;
  }

  void set_bitrate(int64_t bitrate_bps) override {
    encoder_checks::bitrate(bitrate_bps);
    config_.bitrate_bps = bitrate_bps;
    if (spec_.reconfigures_bitrate) {
      apply_rate(codec_.get());  // FFmpeg reconfigures the encoder before the next frame
    } else {
      reopen_pending_ = true;
    }
  }
  void set_fps(int fps) override {
    encoder_checks::fps(fps);
    config_.fps = fps;
    // Rate control budgets bitrate / time-base rate bits a frame, and the time base is fixed once open. An
    // encoder that reconfigures its bitrate in place keeps its time base and gets a bitrate scaled to the
    // new rate (apply_rate): no reopen, so no keyframe, and a node under load changes its rate often.
    if (spec_.reconfigures_bitrate)
      apply_rate(codec_.get());
    else
      reopen_pending_ = true;
  }
  void set_resolution(int width, int height) override {
    encoder_checks::resolution(width, height);
    config_.width = width;
    config_.height = height;
    reopen_pending_ = true;
  }
  void request_keyframe() override { keyframe_pending_ = true; }
  // libavcodec has no call for it (NVENC's nvEncInvalidateRefFrames, x264's invalidate_reference).
  bool invalidate_from(uint64_t) override { return false; }
  // NVENC's periodic intra refresh (intra_refresh_frames) runs, but FFmpeg does not say where its waves end.
  bool refreshes_continuously() const override { return false; }

  std::optional<HostPicture> acquire_host_picture(size_t alignment) override {
    // Backends that take NV12 from host memory (software, NVENC's host frames, and VA-API's upload source).
    if (!spec_.takes_nv12) return std::nullopt;
    return host_pool_.lend(
        alignment,
        // Free: libavcodec holds no reference to it any more.
        [this](int slot) { return av_buffer_get_ref_count(host_frames_[size_t(slot)]->buf[0]) != 1; },
        [this] { wrap_host_pool(); });
  }

  const AccessUnit& encode_host_picture(const HostPicture& picture, const EncodeRequest& request) override {
    AVFrame* frame = host_frames_[size_t(host_pool_.slot_of(picture))].get();
    try {  // the picture goes back to the pool whatever happens
      encoder_checks::lent_picture(picture, request, config_);
      frame->width = request.picture.width;
      frame->height = request.picture.height;
      ++pictures_in_place_;
      const AccessUnit& au = encode_frame(frame, request, steady_now_ns());
      release_host_picture(picture);
      return au;
    } catch (...) {
      release_host_picture(picture);
      throw;
    }
  }

  void release_host_picture(const HostPicture& picture) override { host_pool_.take_back(picture); }

  EncoderCounters counters() const override {
    return EncoderCounters{.pictures_copied = pictures_copied_, .pictures_in_place = pictures_in_place_};
  }

  const std::string& backend() const override { return backend_; }
  const std::string& encoder_name() const override { return encoder_name_; }
  bool reconfigures_in_place() const override { return spec_.reconfigures_bitrate; }
  const EncoderConfig& config() const override { return config_; }

 private:
  void check(int result, const char* what) {
    if (result < 0) {
      std::string detail = last_av_log_error.empty() ? "" : " (" + last_av_log_error + ")";
      throw_runtime(encoder_name_ + ": " + what + ": " + av_error(result) + detail);
    }
  }

  // The target as the encoder must be told it: scaled from the frame rate frames come at (config_.fps) to
  // the rate of the time base it was opened with, so that each frame gets bitrate / fps bits.
  void apply_rate(AVCodecContext* c) const {
    const int64_t bitrate = config_.bitrate_bps * opened_fps_ / std::max(1, config_.fps);
    c->bit_rate = bitrate;
    c->rc_max_rate = spec_.max_rate_is_target ? bitrate : 0;  // VBV: never above the target
    c->rc_min_rate = spec_.family == BackendFamily::kSoftware ? 0 : bitrate;
    // VBV of about one frame: a frame can never take longer than one frame interval to send. Software
    // encoders get 1.5 frames (as Sunshine does) so that slices do not starve each other.
    const double frames = spec_.family == BackendFamily::kSoftware ? 1.5 : 1.0;
    c->rc_buffer_size = int(double(config_.bitrate_bps) * frames / double(config_.fps));
  }

  void open_codec() {
    install_av_log_capture();
    last_av_log_error.clear();
    reopen_pending_ = false;
    if (config_.width <= 0 || config_.height <= 0 || config_.width % 2 || config_.height % 2)
      throw_invalid_input("encoder picture size must be positive and even, got " +
                          std::to_string(config_.width) + "x" + std::to_string(config_.height));
    const AVCodec* codec = avcodec_find_encoder_by_name(spec_.ffmpeg_encoder);
    if (codec == nullptr) throw_runtime(encoder_name_ + ": not in this FFmpeg build");
    codec_.reset(avcodec_alloc_context3(codec));
    AVCodecContext* c = codec_.get();
    c->width = config_.width;
    c->height = config_.height;
    opened_fps_ = config_.fps;
    c->time_base = AVRational{1, config_.fps};
    c->framerate = AVRational{config_.fps, 1};
    c->max_b_frames = 0;  // B-frames need future frames: latency
    c->gop_size =
        config_.intra_refresh_frames > 0 ? config_.intra_refresh_frames : (1 << 30);  // keyframes on request
    c->flags |= AV_CODEC_FLAG_LOW_DELAY;
    c->thread_count = config_.threads;
    c->thread_type = FF_THREAD_SLICE;  // frame threads hold frames back; slice threads do not
    c->slices = std::max(1, config_.slices);
    c->color_range = AVCOL_RANGE_MPEG;  // BT.709 limited range, as the renderer's NV12 pass writes
    c->colorspace = AVCOL_SPC_BT709;
    c->color_primaries = AVCOL_PRI_BT709;
    c->color_trc = AVCOL_TRC_BT709;
    apply_rate(c);
    AVPixelFormat sw_format = spec_.takes_nv12 ? AV_PIX_FMT_NV12 : AV_PIX_FMT_YUV420P;
    c->pix_fmt = sw_format;

    AVDictionary* options = nullptr;
    for (const EncoderOption& o : spec_.options)
      av_dict_set(&options, o.key, option_text(o.value, config_).c_str(), 0);
    if (config_.codec == Codec::kH264 && !config_.h264_profile.empty())
      av_dict_set(&options, "profile", config_.h264_profile.c_str(), 0);
    if (config_.intra_refresh_frames > 0 && spec_.family == BackendFamily::kNvenc)
      av_dict_set(&options, "intra-refresh", "1", 0);
    if (spec_.family == BackendFamily::kVaapi) open_vaapi(c);
    const int opened = avcodec_open2(c, codec, &options);
    av_dict_free(&options);
    check(opened, "open");

    frame_.reset(av_frame_alloc());
    frame_->format = sw_format;
    frame_->width = config_.width;
    frame_->height = config_.height;
    frame_->color_range = AVCOL_RANGE_MPEG;
    frame_->colorspace = AVCOL_SPC_BT709;
    check(av_frame_get_buffer(frame_.get(), 64), "frame buffer");
    hw_frame_.reset(av_frame_alloc());
    packet_.reset(av_packet_alloc());
    next_pts_ = 0;
  }

  void open_vaapi(AVCodecContext* c) {
    const std::string node = config_.vaapi_device.empty() ? first_render_node() : config_.vaapi_device;
    AVBufferRef* device = nullptr;
    check(av_hwdevice_ctx_create(&device, AV_HWDEVICE_TYPE_VAAPI, node.c_str(), nullptr, 0),
          "open VA-API device");
    hw_device_.reset(device);
    AVBufferRef* frames = av_hwframe_ctx_alloc(device);
    auto* frames_ctx = reinterpret_cast<AVHWFramesContext*>(frames->data);
    frames_ctx->format = AV_PIX_FMT_VAAPI;
    frames_ctx->sw_format = AV_PIX_FMT_NV12;
    frames_ctx->width = config_.width;
    frames_ctx->height = config_.height;
    frames_ctx->initial_pool_size = 4;  // a fixed pool: no surface allocation per frame
    const int initialised = av_hwframe_ctx_init(frames);
    if (initialised < 0) av_buffer_unref(&frames);
    check(initialised, "VA-API frame pool");
    c->pix_fmt = AV_PIX_FMT_VAAPI;
    c->hw_frames_ctx = frames;  // the codec context owns this reference
  }

  // Copies the picture into the encoder's own (reference-counted, reused) frame: NV12 as is, or
  // de-interleaved into planar 4:2:0 for encoders that do not take NV12. Writable check avoids any
  // copy-on-write.
  void fill_frame(const Nv12View& p) {
    check(av_frame_make_writable(frame_.get()), "frame");
    const size_t y_stride = p.y_stride ? size_t(p.y_stride) : size_t(p.width);
    const size_t uv_stride = p.uv_stride ? size_t(p.uv_stride) : size_t(p.width);
    for (int row = 0; row < p.height; ++row)
      std::memcpy(frame_->data[0] + size_t(row) * frame_->linesize[0], p.y.data() + row * y_stride,
                  size_t(p.width));
    if (spec_.takes_nv12) {
      for (int row = 0; row < p.height / 2; ++row)
        std::memcpy(frame_->data[1] + size_t(row) * frame_->linesize[1], p.uv.data() + row * uv_stride,
                    size_t(p.width));
      return;
    }
    for (int row = 0; row < p.height / 2; ++row) {
      const uint8_t* uv = p.uv.data() + row * uv_stride;
      uint8_t* u = frame_->data[1] + size_t(row) * frame_->linesize[1];
      uint8_t* v = frame_->data[2] + size_t(row) * frame_->linesize[2];
      for (int x = 0; x < p.width / 2; ++x) {
        u[x] = uv[2 * x];
        v[x] = uv[2 * x + 1];
      }
    }
  }

  const BackendSpec& spec_;
  EncoderConfig config_;
  int opened_fps_ = 30;  // the time base's rate (apply_rate)
  std::string backend_, encoder_name_;
  std::unique_ptr<AVCodecContext, AvCodecContextDeleter> codec_;
  std::unique_ptr<AVBufferRef, AvBufferDeleter> hw_device_;
  std::unique_ptr<AVFrame, AvFrameDeleter> frame_, hw_frame_;
  std::unique_ptr<AVPacket, AvPacketDeleter> packet_;
  // The pictures lent to the renderer, each wrapped once in an AVFrame whose buffer reference count tells
  // when libavcodec is done with it.
  HostPicturePool host_pool_;
  std::array<std::unique_ptr<AVFrame, AvFrameDeleter>, HostPicturePool::kPictures> host_frames_;
  std::atomic<uint64_t> pictures_copied_{0}, pictures_in_place_{0};  // read from other threads

  void wrap_host_pool() {
    for (int slot = 0; slot < HostPicturePool::kPictures; ++slot) {
      const HostPicture picture = host_pool_.picture(slot);
      auto& frame = host_frames_[size_t(slot)];
      frame.reset(av_frame_alloc());
      // Not owned by libavcodec: the no-op free leaves the memory to the pool.
      frame->buf[0] = av_buffer_create(
          picture.data, picture.size, [](void*, uint8_t*) {}, nullptr, 0);
      if (frame->buf[0] == nullptr) throw_runtime("out of memory for the encoder's picture pool");
      frame->format = AV_PIX_FMT_NV12;
      frame->data[0] = picture.data + picture.y_offset;
      frame->data[1] = picture.data + picture.uv_offset;
      frame->linesize[0] = int(picture.y_pitch);
      frame->linesize[1] = int(picture.uv_pitch);
      frame->color_range = AVCOL_RANGE_MPEG;
      frame->colorspace = AVCOL_SPC_BT709;
    }
  }

  AccessUnit au_;
  int64_t next_pts_ = 0;
  bool keyframe_pending_ = true;  // the first frame is always a keyframe
  bool reopen_pending_ = false;
};

std::unique_ptr<VideoEncoder> make_encoder(const BackendSpec& spec, const EncoderConfig& config) {
  if (spec.library == EncoderLibrary::kLibx264) return open_x264_encoder(spec, config);
  return std::make_unique<AvVideoEncoder>(spec, config);
}

// A real session: open, encode a test picture with a forced keyframe, check the first packet is a keyframe.
std::string try_backend(const BackendSpec& spec, const EncoderConfig& base) {
  if (spec.library == EncoderLibrary::kLibavcodec &&
      avcodec_find_encoder_by_name(spec.ffmpeg_encoder) == nullptr)
    return "not in this FFmpeg build";
  if (std::string missing = hardware_missing(spec, base); !missing.empty()) return missing;
  EncoderConfig probe = base;
  probe.width = 256;
  probe.height = 128;
  probe.bitrate_bps = 2'000'000;
  probe.fps = 30;
  try {
    const std::unique_ptr<VideoEncoder> encoder = make_encoder(spec, probe);
    std::vector<uint8_t> y(256 * 128), uv(256 * 64, 128);
    for (size_t i = 0; i < y.size(); ++i) y[i] = uint8_t(16 + (i * 7 + i / 256 * 3) % 200);
    const AccessUnit& au =
        encoder->encode(EncodeRequest{.frame_id = 0,
                                      .pose_id = 0,
                                      .eye = -1,
                                      .picture = {.y = y, .uv = uv, .width = 256, .height = 128},
                                      .keyframe = true});
    if (!au.keyframe) return "first packet was not a keyframe";
    if (au.data.empty()) return "empty first packet";
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const BackendSpec* find_spec(const std::string& backend, Codec codec) {
  for (const BackendSpec& spec : backend_table())
    if (spec.codec == codec && backend == spec.backend) return &spec;
  return nullptr;
}

}  // namespace

const char* codec_name(Codec codec) {
  switch (codec) {
    case Codec::kH264:
      return "h264";
    case Codec::kHevc:
      return "hevc";
    case Codec::kAv1:
      return "av1";
  }
  return "?";
}

Codec parse_codec(const std::string& name) {
  if (name == "h264" || name == "avc") return Codec::kH264;
  if (name == "hevc" || name == "h265") return Codec::kHevc;
  if (name == "av1") return Codec::kAv1;
  throw_invalid_input("unknown codec \"" + name + "\" (h264, hevc or av1)");
}

std::vector<BackendStatus> probe_encoders(Codec codec, const std::string& vaapi_device) {
  std::vector<BackendStatus> out;
  EncoderConfig base{.codec = codec, .vaapi_device = vaapi_device};
  for (const BackendSpec& spec : backend_table()) {
    if (spec.codec != codec) continue;
    const std::string reason = try_backend(spec, base);
    out.push_back(
        BackendStatus{.backend = spec.backend,
                      .encoder = spec.ffmpeg_encoder,
                      .codec = codec,
                      .available = reason.empty(),
                      .reason = reason.empty() ? "opened a session and produced a keyframe" : reason,
                      .loss_recovery = spec.recovery.value});
  }
  return out;
}

std::unique_ptr<VideoEncoder> VideoEncoder::open(const EncoderConfig& config) {
  if (config.backend == "auto") {
    std::string reasons;
    for (const BackendSpec& spec : backend_table()) {
      if (spec.codec != config.codec) continue;
      const std::string reason = try_backend(spec, config);
      if (reason.empty()) {
        spdlog::info("encoder: using {} ({})", spec.backend, spec.ffmpeg_encoder);
        return make_encoder(spec, config);
      }
      spdlog::info("encoder: {} ({}) rejected: {}", spec.backend, spec.ffmpeg_encoder, reason);
      reasons += std::string(reasons.empty() ? "" : "; ") + spec.backend + ": " + reason;
    }
    throw_runtime(std::string("no working ") + codec_name(config.codec) + " encoder: " + reasons);
  }
  const BackendSpec* spec = find_spec(config.backend, config.codec);
  if (spec == nullptr) {
    bool known = false;
    for (const BackendSpec& s : backend_table()) known |= config.backend == s.backend;
    if (!known)
      throw_invalid_input("unknown encoder backend \"" + config.backend +
                          "\" (auto, nvenc, vaapi, x264, x265, svtav1)");
    throw_invalid_input("encoder backend " + config.backend + " has no " + codec_name(config.codec) +
                        " encoder");
  }
  if (const std::string reason = try_backend(*spec, config); !reason.empty())
    throw_runtime("encoder " + config.backend + " (" + spec->ffmpeg_encoder + ") unavailable: " + reason);
  return make_encoder(*spec, config);
}

}  // namespace kairo
