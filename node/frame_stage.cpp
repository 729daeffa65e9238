#include "node/frame_stage.hpp"

#include "core/clock.hpp"
#include "core/foveation.hpp"

namespace kairo {

struct FrameStage::Impl {
  FrameStageConfig config;
  std::unique_ptr<StereoRenderer> renderer;
  std::unique_ptr<VideoEncoder> encoder;
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
  d.renderer = std::make_unique<StereoRenderer>(std::move(scene),
                                                RendererConfig{.eye_width = config.eye_width,
                                                               .eye_height = config.eye_height,
                                                               .frames_in_flight = config.frames_in_flight,
                                                               .nv12 = Nv12Layout::kSideBySide});
  d.encoder = VideoEncoder::open(EncoderConfig{.codec = config.codec,
                                               .backend = config.encoder_backend,
                                               .width = 2 * config.eye_width,
                                               .height = config.eye_height,
                                               .fps = config.fps,
                                               .bitrate_bps = config.bitrate_bps,
                                               .slices = 4,
                                               .threads = config.encoder_threads});
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
  const FrameRequest request{
      .frame_id = frame_id,
      .view = view,
      .want_rgba = d.config.keep_rgba,
      .nv12_target = nullptr,
      .coded_width = coded.x,
      .coded_height = coded.y,
      .foveation = FoveationParams{.strength = s.foveation, .centre = {s.gaze, s.gaze}, .fovea_radius = 0.4f},
      .dynamic_draws = dynamic_draws};
  d.renderer->submit(request);
  const RenderedFrame& frame = d.renderer->collect();
  StageRendered out;
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

int FrameStage::free_slots() const {
  return impl_->renderer->free_slots();
}

StageEncoded FrameStage::encode(const StageRendered& rendered, const FrameSettings& s, bool keyframe) {
  Impl& d = *impl_;
  const FrameMetadata& m = rendered.metadata;
  if (m.coded_width != d.coded_width || m.coded_height != d.coded_height) {
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
    d.encoder->set_fps(s.fps);
    d.fps = s.fps;
  }
  const Nv12Picture& picture = rendered.frame->nv12[0];
  const AccessUnit& au = d.encoder->encode(EncodeRequest{
      .frame_id = m.frame_id,
      .pose_id = m.pose_id,
      .eye = -1,
      .picture = Nv12View{.y = picture.y, .uv = picture.uv, .width = picture.width, .height = picture.height},
      .keyframe = keyframe});
  FrameMetadata sent = m;
  sent.encode_start_ns = au.encode_start_ns;
  sent.encode_end_ns = au.encode_end_ns;
  sent.keyframe = au.keyframe;
  const size_t n = write(sent, d.metadata_bytes);
  return StageEncoded{.metadata = std::span<const uint8_t>(d.metadata_bytes.data(), n),
                      .access_unit = au.data,
                      .keyframe = au.keyframe,
                      .encode_start_ns = au.encode_start_ns,
                      .encode_end_ns = au.encode_end_ns};
}

const std::string& FrameStage::encoder_backend() const {
  return impl_->encoder->backend();
}
int64_t FrameStage::encoder_bitrate_bps() const {
  return impl_->bitrate_bps;
}
const FrameStageConfig& FrameStage::config() const {
  return impl_->config;
}

}  // namespace kairo
