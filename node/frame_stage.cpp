#include "node/frame_stage.hpp"

#include "core/clock.hpp"
#include "core/foveation.hpp"

namespace kairo {

struct FrameStage::Impl {
  FrameStageConfig config;
  // The encoder before the renderer: the renderer (destroyed first) imports the encoder's picture memory.
  std::unique_ptr<VideoEncoder> encoder;
  std::unique_ptr<StereoRenderer> renderer;
  size_t host_alignment = 0;  // 0: no zero copy
  // Encode thread's state: what the encoder was last set to.
  int coded_width = 0, coded_height = 0;
  int64_t bitrate_bps = 0;
  int fps = 0;
  std::array<uint8_t, FrameMetadata::kSize> metadata_bytes{};
};

FrameStage::FrameStage(std::shared_ptr<GpuScene> scene, const FrameStageConfig& config)
    : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.config = config;
  d.encoder = VideoEncoder::open(EncoderConfig{.codec = config.codec,
                                               .backend = config.encoder_backend,
                                               .width = 2 * config.eye_width,
                                               .height = config.eye_height,
                                               .fps = config.fps,
                                               .bitrate_bps = config.bitrate_bps,
                                               .slices = 4,
                                               .threads = config.encoder_threads,
                                               .intra_refresh_frames = config.intra_refresh_frames,
                                               .constant_bitrate = false,
                                               .vaapi_device = {},
                                               .h264_profile = config.h264_profile,
                                               .reference_invalidation = config.reference_invalidation});
  if (config.zero_copy && scene->context().imports_host_memory())
    d.host_alignment = scene->context().host_import_alignment();
  d.renderer = std::make_unique<StereoRenderer>(std::move(scene),
                                                RendererConfig{.eye_width = config.eye_width,
                                                               .eye_height = config.eye_height,
                                                               .frames_in_flight = config.frames_in_flight,
                                                               .nv12 = Nv12Layout::kSideBySide});
  d.coded_width = config.eye_width;
  d.coded_height = config.eye_height;
  d.bitrate_bps = config.bitrate_bps;
  d.fps = config.fps;
}

FrameStage::~FrameStage() = default;

StageRendered FrameStage::render(uint64_t frame_id, const StereoView& view, const FrameSettings& s,
                                 std::span<const DynamicDraw> dynamic_draws, int64_t scene_time_ns) {
  Impl& d = *impl_;
  const int w = d.config.eye_width, h = d.config.eye_height;
  const glm::ivec2 coded = coded_eye_size(w, h, s.resolution_scale, s.foveation);
  StageRendered out;
  // Zero copy: the NV12 pass writes into a picture the encoder lends (none free: the readback buffer).
  ExternalNv12Target target;
  if (d.host_alignment > 0) out.picture = d.encoder->acquire_host_picture(d.host_alignment);
  if (out.picture)
    target = ExternalNv12Target{.host_pointer = out.picture->data,
                                .size = out.picture->size,
                                .y_offset = out.picture->y_offset,
                                .y_pitch = out.picture->y_pitch,
                                .uv_offset = out.picture->uv_offset,
                                .uv_pitch = out.picture->uv_pitch};
  const FrameRequest request{
      .frame_id = frame_id,
      .view = view,
      .want_rgba = d.config.keep_rgba,
      .nv12_target = out.picture ? &target : nullptr,
      .coded_width = coded.x,
      .coded_height = coded.y,
      .foveation = FoveationParams{.strength = s.foveation, .centre = {s.gaze, s.gaze}, .fovea_radius = 0.4f},
      .dynamic_draws = dynamic_draws};
  try {
    d.renderer->submit(request);
  } catch (...) {
    if (out.picture) d.encoder->release_host_picture(*out.picture);
    throw;
  }
  const RenderedFrame& frame = d.renderer->collect();
  out.frame = &frame;
  FrameMetadata& m = out.metadata;
  m.frame_id = frame_id;
  m.render_start_ns = scene_time_ns;
  m.render_end_ns = frame.completed_ns;
  m.view = frame.view;
  m.eye_width = uint16_t(w);
  m.eye_height = uint16_t(h);
  m.coded_width = uint16_t(coded.x);
  m.coded_height = uint16_t(coded.y);
  m.foveation = request.foveation;
  return out;
}

void FrameStage::release(const RenderedFrame& frame) {
  impl_->renderer->release(frame);
}

void FrameStage::discard(const StageRendered& rendered) {
  if (rendered.picture) impl_->encoder->release_host_picture(*rendered.picture);
  if (rendered.frame) impl_->renderer->release(*rendered.frame);
}

Nv12View FrameStage::picture(const StageRendered& rendered) const {
  const int width = 2 * rendered.metadata.coded_width, height = rendered.metadata.coded_height;
  if (const auto& p = rendered.picture) {
    const uint8_t* base = p->data;
    return Nv12View{.y = {base + p->y_offset, size_t(p->y_pitch) * size_t(height)},
                    .uv = {base + p->uv_offset, size_t(p->uv_pitch) * size_t(height / 2)},
                    .width = width,
                    .height = height,
                    .y_stride = int(p->y_pitch),
                    .uv_stride = int(p->uv_pitch)};
  }
  const Nv12Picture& own = rendered.frame->nv12[0];
  return Nv12View{.y = own.y,
                  .uv = own.uv,
                  .width = own.width,
                  .height = own.height,
                  .y_stride = own.width,
                  .uv_stride = own.width};
}

int FrameStage::free_slots() const {
  return impl_->renderer->free_slots();
}

StageEncoded FrameStage::encode(const StageRendered& rendered, const FrameSettings& s, bool keyframe,
                                std::optional<uint64_t> recover_from, bool speculative) {
  Impl& d = *impl_;
  const FrameMetadata& m = rendered.metadata;
  const bool resized = m.coded_width != d.coded_width || m.coded_height != d.coded_height;
  if (resized) {
    d.coded_width = m.coded_width;
    d.coded_height = m.coded_height;
    d.encoder->set_resolution(2 * d.coded_width, d.coded_height);
    keyframe = true;
  }
  if (s.bitrate_bps > 0 && s.bitrate_bps != d.bitrate_bps) {
    d.encoder->set_bitrate(s.bitrate_bps);
    d.bitrate_bps = s.bitrate_bps;
  }
  if (s.fps > 0 && s.fps != d.fps) {
    d.encoder->set_fps(s.fps);  // no keyframe where the encoder reconfigures in place (av_encoder.cpp)
    d.fps = s.fps;
  }
  // A loss: an encoder refreshing continuously repairs it with its next wave; else a repair frame where the
  // encoder can invalidate, else a keyframe (not for a speculative recovery: the frame may yet arrive).
  if (recover_from && !keyframe && !d.encoder->refreshes_continuously() &&
      !d.encoder->invalidate_from(*recover_from) && !speculative)
    keyframe = true;
  const EncodeRequest request{.frame_id = m.frame_id,
                              .pose_id = m.pose_id,
                              .eye = -1,
                              .picture = picture(rendered),
                              .keyframe = keyframe};
  const AccessUnit& au = rendered.picture ? d.encoder->encode_host_picture(*rendered.picture, request)
                                          : d.encoder->encode(request);
  FrameMetadata sent = m;
  sent.encode_start_ns = au.encode_start_ns;
  sent.encode_end_ns = au.encode_end_ns;
  sent.keyframe = au.keyframe;
  sent.repairs_from = au.repairs_from;
  sent.refreshed_from = au.refreshed_from;
  const size_t n = write(sent, d.metadata_bytes);
  return StageEncoded{.metadata = std::span<const uint8_t>(d.metadata_bytes.data(), n),
                      .access_unit = au.data,
                      .keyframe = au.keyframe,
                      .repairs_from = au.repairs_from,
                      .refreshed_from = au.refreshed_from,
                      .resized = resized,
                      .encode_start_ns = au.encode_start_ns,
                      .encode_end_ns = au.encode_end_ns};
}

const std::string& FrameStage::encoder_backend() const {
  return impl_->encoder->backend();
}
int64_t FrameStage::encoder_bitrate_bps() const {
  return impl_->bitrate_bps;
}
EncoderCounters FrameStage::encoder_counters() const {
  return impl_->encoder->counters();
}
const FrameStageConfig& FrameStage::config() const {
  return impl_->config;
}

}  // namespace kairo
