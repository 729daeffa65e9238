#pragma once
// The encoder layer: an NV12 picture in, one compressed access unit (Annex-B) out, on whatever encoder the
// machine has (NVENC, VA-API, x264/x265/SVT-AV1 through libavcodec), tuned for one frame of latency.
// Light header: no FFmpeg types leak out of encoder/*.cpp.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace kairo {

enum class Codec { kH264, kHevc, kAv1 };
const char* codec_name(Codec codec);         // "h264", "hevc", "av1"
Codec parse_codec(const std::string& name);  // throws kairo::Error (invalid input)

struct EncoderConfig {
  Codec codec = Codec::kH264;
  // "auto" probes in order NVENC, VA-API, software; or one of "nvenc", "vaapi", "x264", "x265", "svtav1".
  std::string backend = "auto";
  int width = 0;  // picture size; NV12 needs both even
  int height = 0;
  int fps = 90;
  int64_t bitrate_bps = 20'000'000;
  int slices = 4;   // independently decodable slices per picture (loss containment, parallelism)
  int threads = 0;  // 0: as many as cores
  // >0: periodic intra refresh instead of keyframes, a wave of about that many frames after another (x264:
  // each wave's end is marked, AccessUnit::refreshed_from, and repairs any loss before the wave began).
  int intra_refresh_frames = 0;
  // Pad every frame up to the target (x264 filler): a constant rate on the wire, for links that want one.
  // Off: the target is a ceiling (VBV), and a picture that needs fewer bits sends fewer.
  bool constant_bitrate = false;
  std::string vaapi_device{};  // empty: the first /dev/dri/renderD* node
  // H.264 profile ("main", "high", ...); empty: the backend's own choice. Browsers decode constrained
  // baseline and main only (x264's superfast would pick High for its 8x8 transform).
  std::string h264_profile{};
  // Keep up to 16 frames to predict from, so that a loss can be repaired by invalidating the lost frame's
  // successors (VideoEncoder::invalidate_from) where the backend can. Off for browsers: their WebRTC stack
  // waits for a keyframe after any loss, and the larger DPB would raise the stream's level.
  bool reference_invalidation = true;
};

// An NV12 picture in host memory (for example a RenderedFrame's nv12 views).
struct Nv12View {
  std::span<const uint8_t> y;
  std::span<const uint8_t> uv;
  int width = 0;
  int height = 0;
  int y_stride = 0;   // 0: width
  int uv_stride = 0;  // 0: width
};

struct EncodeRequest {
  uint64_t frame_id = 0;
  uint64_t pose_id = 0;
  int eye = -1;  // -1: both eyes in one picture; 0 left, 1 right (one encoder per eye)
  Nv12View picture;
  bool keyframe = false;  // force an IDR at this frame
};

struct AccessUnit {
  uint64_t frame_id = 0;
  uint64_t pose_id = 0;
  int eye = -1;
  bool keyframe = false;
  // A repair (not a keyframe): predicted only from frames before this id, which the client decoded before its
  // loss (VideoEncoder::invalidate_from). It repairs a reference chain that broke at this frame id or later.
  std::optional<uint64_t> repairs_from{};
  // The end of an intra-refresh wave: the picture depends only on frames from this id (the wave's first) on,
  // so it repairs a reference chain whose last missing or broken frame came before that.
  std::optional<uint64_t> refreshed_from{};
  std::span<const uint8_t> data;  // Annex-B; valid until the next encode() on the same encoder
  int64_t encode_start_ns = 0;    // steady clock
  int64_t encode_end_ns = 0;
};

struct BackendStatus {
  std::string backend;  // nvenc, vaapi, x264, x265, svtav1
  std::string encoder;  // FFmpeg's encoder name, e.g. h264_nvenc
  Codec codec = Codec::kH264;
  bool available = false;
  std::string reason;  // why not (or what was verified)
  // How it repairs a client's loss: "reference invalidation" or "IDR" (backend_table.cpp says why).
  std::string loss_recovery{};
};

// A picture in host memory the encoder owns, lent to the renderer's NV12 pass to write into (the memory is
// imported into the Vulkan device with VK_EXT_external_memory_host), so the rendered picture reaches the
// encoder without a host copy. Side-by-side NV12 with pitches; at most the size the encoder was opened with.
struct HostPicture {
  uint8_t* data = nullptr;  // aligned as asked; `size` is a multiple of that alignment
  uint64_t size = 0;
  uint32_t y_offset = 0, y_pitch = 0, uv_offset = 0, uv_pitch = 0;
  int width = 0, height = 0;  // the largest picture it holds
  int slot = -1;              // the encoder's handle
};

// How pictures reached the encoder: copied from the caller's memory, or written in place by the renderer.
struct EncoderCounters {
  uint64_t pictures_copied = 0;
  uint64_t pictures_in_place = 0;
};

class VideoEncoder {
 public:
  // Throws kairo::Error: a forced backend that is unavailable (with the reason), or no working encoder at all
  // (with every candidate's reason).
  static std::unique_ptr<VideoEncoder> open(const EncoderConfig& config);
  virtual ~VideoEncoder() = default;

  // Exactly one access unit out for every picture in: the encoder holds no frame back.
  // Throws kairo::Error (invalid input) on a picture of the wrong size.
  virtual const AccessUnit& encode(const EncodeRequest& request) = 0;

  // Runtime control. Bitrate and frame rate apply from the next frame (in place where the backend can
  // reconfigure, else by reopening at a keyframe); resolution applies at the next frame, which is a keyframe.
  virtual void set_bitrate(int64_t bitrate_bps) = 0;
  virtual void set_fps(int fps) = 0;
  virtual void set_resolution(int width, int height) = 0;
  virtual void request_keyframe() = 0;
  // Recovery from a loss without a keyframe, where the backend can (x264: reference invalidation): the next
  // frame predicts only from frames before `first_lost_frame_id`, which the client has, and is marked as a
  // repair (AccessUnit::repairs_from). False when the backend cannot, or the frames before the loss are gone
  // from its references: the caller asks for a keyframe instead.
  virtual bool invalidate_from(uint64_t first_lost_frame_id) = 0;
  // True when the encoder repairs losses by itself, without being told (intra-refresh waves whose ends it
  // marks): a client's loss then needs neither a keyframe nor an invalidation.
  virtual bool refreshes_continuously() const = 0;

  // A free picture of the encoder's host pool (for backends that take NV12 from host memory), aligned to
  // `alignment` bytes; nullopt when the backend has none or all are lent. Safe to call from another thread
  // than encode() (the renderer's), as are release_host_picture() and counters().
  virtual std::optional<HostPicture> acquire_host_picture(size_t alignment) = 0;
  // Encodes the top-left `request.picture.width` x `height` of a lent picture the renderer has written (the
  // request's plane spans are ignored) and takes the picture back. Throws kairo::Error (invalid input) for a
  // picture not lent by this encoder or a size it does not hold.
  virtual const AccessUnit& encode_host_picture(const HostPicture& picture, const EncodeRequest& request) = 0;
  // Takes a lent picture back unencoded (a frame dropped before its encode).
  virtual void release_host_picture(const HostPicture& picture) = 0;
  virtual EncoderCounters counters() const = 0;

  virtual const std::string& backend() const = 0;
  virtual const std::string& encoder_name() const = 0;
  virtual bool reconfigures_in_place() const = 0;  // bitrate/fps changes without a keyframe
  virtual const EncoderConfig& config() const = 0;
};

// Every backend for `codec` in probe order, each tried with a real session (a test picture, forced keyframe,
// first packet must be a keyframe). Reasons are concrete: "no /dev/dri render node", "libnvidia-encode.so.1
// not found", "not in this FFmpeg build", or FFmpeg's own error.
std::vector<BackendStatus> probe_encoders(Codec codec, const std::string& vaapi_device = "");

}  // namespace kairo
