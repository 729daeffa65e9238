#include "encoder/backend_table.hpp"

#include <algorithm>

namespace kairo {

// Common to every backend (set on AVCodecContext in av_encoder.cpp): no B-frames, one-frame VBV (max rate =
// target, no filler), infinite GOP with keyframes on request, low-delay flag. What follows is each encoder's
// private dialect, and how it repairs a client's loss.
const std::vector<BackendSpec>& backend_table() {
  static const std::vector<EncoderOption> nvenc_options = {
      {"preset", "p1", "fastest preset: latency over compression"},
      {"tune", "ull", "ultra-low-latency tuning"},
      {"zerolatency", "1", "no reordering delay"},
      {"delay", "0", "hand each packet out as soon as it is encoded"},
      {"rc", "cbr", "constant bitrate: the pacer and the bandwidth estimate need a steady rate"},
      {"forced-idr", "1", "a requested keyframe is an IDR the client can join at"},
      {"rc-lookahead", "0", "no lookahead: it holds frames back"},
      {"surfaces", "1", "single input surface: no frame queue inside the encoder"},
  };
  static const std::vector<EncoderOption> vaapi_options = {
      {"async_depth", "1", "one frame in flight in the driver: no added latency"},
      {"rc_mode", "CBR", "constant bitrate for pacing"},
      {"slices", "{slices}", "independently decodable slices (clamped by the driver's maximum)"},
  };
  // NVENC has reference invalidation (nvEncInvalidateRefFrames, as Sunshine uses it) but FFmpeg does not
  // expose it, and its intra refresh is periodic only (a constant cost, for links that lose all the time).
  static const EncoderOption nvenc_recovery = {
      "recovery", "IDR",
      "FFmpeg's nvenc wrapper exposes neither reference invalidation nor on-demand refresh"};
  static const EncoderOption idr_recovery = {"recovery", "IDR",
                                             "no way to invalidate a reference or refresh on demand"};
  static const std::vector<BackendSpec> table = {
      {"nvenc", Codec::kH264, "h264_nvenc", BackendFamily::kNvenc, true, true, true, nvenc_options,
       EncoderLibrary::kLibavcodec, nvenc_recovery},
      {"vaapi", Codec::kH264, "h264_vaapi", BackendFamily::kVaapi, false, true, true, vaapi_options,
       EncoderLibrary::kLibavcodec, idr_recovery},
      {"x264",
       Codec::kH264,
       "libx264",
       BackendFamily::kSoftware,
       true,
       true,
       true,
       {{"preset", "superfast", "fast enough for 90 Hz on a few cores, far better than ultrafast"},
        {"tune", "zerolatency", "no lookahead, no frame threads, no B-frames: one frame in, one out"},
        {"x264-params",
         "sliced-threads=1:slices={slices}:keyint=infinite:scenecut=0:filler={filler}:repeat-headers=1",
         "threads split each picture (no frame delay); infinite GOP; headers on every IDR for late joiners; "
         "no filler unless constant_bitrate asks: a picture that needs fewer bits than the target sends "
         "fewer "
         "(the VBV caps the rest); no nal-hrd: x264 refuses bitrate reconfiguration with it"}},
       EncoderLibrary::kLibx264,
       {"recovery", "reference invalidation",
        "x264_encoder_invalidate_reference with a DPB of 16: the repair is a P-frame predicted from the last "
        "frame the client decoded, about the size of any other (an IDR only when that frame has left the "
        "DPB). Intra refresh instead only when configured (intra_refresh_frames: continuous waves, each end "
        "marked; kairo node --loss-recovery intra-refresh): x264 cannot combine the two, an on-demand wave "
        "moves one macroblock column a frame (31 frames at 2x256 wide, every one held from display), and "
        "continuous waves cost quality on every frame (3.2 dB at 300 kbit/s, tests/encoder_test.cpp)"}},
      {"nvenc", Codec::kHevc, "hevc_nvenc", BackendFamily::kNvenc, true, true, true, nvenc_options,
       EncoderLibrary::kLibavcodec, nvenc_recovery},
      {"vaapi", Codec::kHevc, "hevc_vaapi", BackendFamily::kVaapi, false, true, true, vaapi_options,
       EncoderLibrary::kLibavcodec, idr_recovery},
      {"x265",
       Codec::kHevc,
       "libx265",
       BackendFamily::kSoftware,
       false,
       false,
       true,
       {{"preset", "ultrafast", "x265 is several times slower than x264 at equal settings"},
        {"tune", "zerolatency", "no B-frames, no lookahead, no frame threads"},
        {"forced-idr", "1", "a requested keyframe is an IDR"},
        {"x265-params",
         "bframes=0:rc-lookahead=0:keyint=-1:scenecut=0:frame-threads=1:repeat-headers=1:info=0:log-level="
         "error",
         "infinite GOP, one frame thread, headers on every IDR; no slices: with them x265 holds a frame "
         "back"}},
       EncoderLibrary::kLibavcodec,
       idr_recovery},
      {"nvenc", Codec::kAv1, "av1_nvenc", BackendFamily::kNvenc, true, true, true, nvenc_options,
       EncoderLibrary::kLibavcodec, nvenc_recovery},
      {"vaapi", Codec::kAv1, "av1_vaapi", BackendFamily::kVaapi, false, true, true, vaapi_options,
       EncoderLibrary::kLibavcodec, idr_recovery},
      {"svtav1",
       Codec::kAv1,
       "libsvtav1",
       BackendFamily::kSoftware,
       false,
       false,
       false,
       {{"preset", "12", "fastest SVT-AV1 preset"},
        {"svtav1-params", "pred-struct=1:lookahead=0:scd=0:keyint=-1",
         "low-delay prediction, no lookahead, infinite GOP"}},
       EncoderLibrary::kLibavcodec,
       idr_recovery},
  };
  return table;
}

std::string option_text(const char* value, const EncoderConfig& config) {
  std::string text = value;
  auto replace = [&](const std::string& key, const std::string& with) {
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key))
      text.replace(at, key.size(), with);
  };
  replace("{slices}", std::to_string(std::max(1, config.slices)));
  replace("{threads}", std::to_string(config.threads));
  replace("{filler}", config.constant_bitrate ? "1" : "0");
  return text;
}

}  // namespace kairo
