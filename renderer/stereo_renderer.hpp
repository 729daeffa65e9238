#pragma once
// Renders per-eye 6DoF stereo views of a GpuScene: both eyes in one multiview pass into a 2-layer target,
// then on the device an NV12 (BT.709) picture for the encoder, and optionally RGBA for PNGs and QA.
//
// Frames are pipelined over `frames_in_flight` slots, each with its own command buffer, fence, target images
// and readback memory, all created up front: the frame loop allocates nothing and never waits on the device
// as a whole, only on the fence of the frame it collects.
#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "core/foveation.hpp"
#include "core/pose.hpp"
#include "renderer/dynamic_draw.hpp"
#include "renderer/gpu_scene.hpp"

namespace kairo {

enum class Nv12Layout {
  kNone,        // no NV12 (PNG/QA only)
  kSideBySide,  // one picture 2W x H, left eye in the left half
  kPerEye,      // one W x H picture per eye
};

enum class MultiviewMode {
  kAuto,    // multiview unless the device failed the start-up probe (see multiview_is_reliable)
  kOn,      // always one multiview pass
  kPerEye,  // two passes, one per eye (the fallback; also a reference for tests)
};

struct RendererConfig {
  int eye_width = 1024;
  int eye_height = 1024;
  int frames_in_flight = 3;
  Nv12Layout nv12 = Nv12Layout::kSideBySide;  // needs eye_width % 4 == 0 and eye_height % 2 == 0
  float near_plane = 0.05f;                   // metres; the far plane is at infinity (reverse-Z)
  MultiviewMode multiview = MultiviewMode::kAuto;
  // Levels of detail (renderer/mesh_lod.hpp): each draw takes the coarsest level whose geometric error
  // projects under this many pixels at the eye's resolution; 0 draws every mesh at full detail.
  float lod_pixel_error = 1.0f;
};

// Memory the encoder owns (its host picture pool, imported with VK_EXT_external_memory_host), for the NV12
// pass to write into instead of the renderer's readback buffer: the picture reaches the encoder without a
// copy. Side-by-side layout only, at the coded size from the top-left. Offsets and pitches are in bytes and
// must be multiples of 4; the pitch at least the rendered picture width (2 x eye width). Imports are cached
// per pointer, so a pool of a few pictures is imported once.
struct ExternalNv12Target {
  void* host_pointer = nullptr;  // aligned to VulkanContext::host_import_alignment(); size a multiple of it
  uint64_t size = 0;
  uint32_t y_offset = 0, y_pitch = 0, uv_offset = 0, uv_pitch = 0;
};

constexpr size_t kMaxDynamicDraws = 256;

struct FrameRequest {
  uint64_t frame_id = 0;
  StereoView view;
  bool want_rgba = false;                           // copy the stereo RGBA to host memory too
  const ExternalNv12Target* nv12_target = nullptr;  // null: the renderer's own readback buffer
  // Coded size of one eye in the NV12 picture(s): 0 for the rendered size. Smaller sizes scale the eye
  // down, through the foveation warp when `foveation.strength` > 0 (see core/foveation.hpp), uniformly
  // otherwise. Multiples of 8, at most the rendered size.
  int coded_width = 0;
  int coded_height = 0;
  FoveationParams foveation{};
  // Drawn after the scene, into both eyes (recorded into the command buffer: need not outlive submit()).
  // At most kMaxDynamicDraws, with finite transforms.
  std::span<const DynamicDraw> dynamic_draws{};
};

struct Nv12Picture {
  std::span<const uint8_t> y;   // width x height bytes, stride = width
  std::span<const uint8_t> uv;  // width x height/2 bytes, interleaved Cb Cr
  int width = 0;
  int height = 0;
};

struct RenderedFrame {
  uint64_t frame_id = 0;
  StereoView view;                  // exactly what was rendered
  std::span<const uint8_t> rgba;    // 2W x H, left eye in the left half; empty unless requested
  std::array<Nv12Picture, 2> nv12;  // [0] only for side by side; [0] left, [1] right for per eye
  int nv12_pictures = 0;
  uint64_t triangles_drawn = 0;  // of the scene (both eyes draw the same), at the levels of detail chosen
  double gpu_render_ms = -1;     // device time of the multiview pass, -1 without timestamp support
  double gpu_convert_ms = -1;    // device time of NV12 conversion and readback copies
  int64_t submitted_ns = 0;      // steady clock
  int64_t completed_ns = 0;      // when collect() saw the fence signalled
};

class StereoRenderer {
 public:
  StereoRenderer(std::shared_ptr<GpuScene> scene, const RendererConfig& config);
  ~StereoRenderer();
  StereoRenderer(const StereoRenderer&) = delete;
  StereoRenderer& operator=(const StereoRenderer&) = delete;

  // Records and submits a frame into a free slot. Throws if none is free: collect and release first.
  void submit(const FrameRequest& request);
  // Waits for the oldest submitted frame. Its data stays valid until release() of that frame.
  const RenderedFrame& collect();
  void release(const RenderedFrame& frame);

  int free_slots() const;
  int in_flight() const;  // submitted and not yet collected
  const RendererConfig& config() const;
  bool uses_multiview() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Renders a floor that crosses the near plane in one multiview pass and checks that each eye got its own
// half. Mesa's lavapipe 22.x fails it: triangles it has to clip in view 1 land in layer 0. Cached per device.
bool multiview_is_reliable(const std::shared_ptr<VulkanContext>& context);
// The probe itself, for one mode (tests check that the per-eye fallback passes it).
bool stereo_clipping_correct(const std::shared_ptr<VulkanContext>& context, MultiviewMode mode);

}  // namespace kairo
