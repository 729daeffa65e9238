#pragma once
// One frame's way from a view to bytes on the wire, defined once: stereo render -> NV12 on the device,
// foveated or scaled to the coded size -> encode -> the frame's metadata block. The node's sessions, `kairo
// replay` and the benchmarks all run this stage, so QA replays exactly what users were served.
// The two halves may run on two threads (the node overlaps render of frame N with encode of N-1): render()
// and release() on one, encode() on the other; a rendered frame's slot stays held until release().
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include <glm/vec2.hpp>

#include "core/pose.hpp"
#include "encoder/video_encoder.hpp"
#include "renderer/dynamic_draw.hpp"
#include "renderer/stereo_renderer.hpp"
#include "streaming/frame_metadata.hpp"

namespace kairo {

class GpuScene;

struct FrameStageConfig {
  int eye_width = 0, eye_height = 0, fps = 30;
  Codec codec = Codec::kH264;
  std::string encoder_backend = "auto";
  int64_t bitrate_bps = 8'000'000;
  int frames_in_flight = 3;
  int encoder_threads = 0;  // 0: the encoder's choice; 1: bit-exact from run to run (replay)
  bool keep_rgba = false;   // also copy the rendered RGBA to host memory (replay's hashes and PSNR)
  // Render NV12 straight into the encoder's host picture pool where the device imports host memory and the
  // encoder takes NV12 (no copy between renderer and encoder); off: through the renderer's readback buffer.
  // Both give the same pictures, bit for bit.
  bool zero_copy = true;
  std::string h264_profile{};          // EncoderConfig::h264_profile: "main" for browsers
  bool reference_invalidation = true;  // EncoderConfig::reference_invalidation: off for browsers
  int intra_refresh_frames = 0;        // EncoderConfig::intra_refresh_frames
};

// What a frame is rendered and encoded with: the quality controller's choice on a node, a recording's or the
// command line's in replay.
struct FrameSettings {
  float foveation = 0;   // strength 0..1 (core/foveation.hpp); 0: none
  glm::vec2 gaze{0.0f};  // foveation centre, normalised -1..1 (x right, y down)
  double resolution_scale = 1;
  int64_t bitrate_bps = 0;  // 0: leave the encoder's
  int fps = 0;              // 0: leave the encoder's
};

struct StageRendered {
  const RenderedFrame* frame = nullptr;  // held until FrameStage::release
  FrameMetadata metadata;                // view, sizes, foveation, render times; encode fields still empty
  std::optional<HostPicture> picture;    // the encoder's picture the NV12 went into (zero copy), if any
};

struct StageEncoded {
  std::span<const uint8_t> metadata;     // FrameMetadata as sent in front of the access unit
  std::span<const uint8_t> access_unit;  // valid until the next encode()
  bool keyframe = false;
  // A repair of the loss from this frame on, or the end of a refresh wave that began at this frame
  // (AccessUnit::repairs_from, refreshed_from).
  std::optional<uint64_t> repairs_from{}, refreshed_from{};
  bool resized = false;  // the coded size changed at this frame (so it is a keyframe)
  int64_t encode_start_ns = 0, encode_end_ns = 0;
};

class FrameStage {
 public:
  // Throws kairo::Error (no encoder, bad sizes).
  FrameStage(std::shared_ptr<GpuScene> scene, const FrameStageConfig& config);
  ~FrameStage();
  FrameStage(const FrameStage&) = delete;
  FrameStage& operator=(const FrameStage&) = delete;

  // Render half. `scene_time_ns` is render start as the frame's metadata records it (the moment dynamic
  // draws were taken); the caller fills the pose fields of the returned metadata.
  StageRendered render(uint64_t frame_id, const StereoView& view, const FrameSettings& settings,
                       std::span<const DynamicDraw> dynamic_draws, int64_t scene_time_ns);
  void release(const RenderedFrame& frame);
  // Drops a rendered frame that will not be encoded: its slot and, with zero copy, the encoder's picture.
  void discard(const StageRendered& rendered);
  int free_slots() const;
  // The rendered NV12 picture (side by side, coded size), wherever it was written; valid until encode() or
  // discard() of that frame.
  Nv12View picture(const StageRendered& rendered) const;

  // Encode half: applies the settings' bitrate and frame rate, and a change of coded size (which forces a
  // keyframe), encodes, and completes the metadata.
  // `recover_from`: the client lost that frame; the encoder stops predicting from it and what followed, or,
  // where it cannot, makes this frame a keyframe. `speculative`: the frame was only NACKed (it may yet
  // arrive): repair where the encoder can, no keyframe where it cannot.
  StageEncoded encode(const StageRendered& rendered, const FrameSettings& settings, bool keyframe,
                      std::optional<uint64_t> recover_from = std::nullopt, bool speculative = false);

  const std::string& encoder_backend() const;
  int64_t encoder_bitrate_bps() const;
  const FrameStageConfig& config() const;
  EncoderCounters encoder_counters() const;  // pictures copied into the encoder vs written in place

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo
