#pragma once
// Benchmark support, not product code: the node encodes side by side through its frame stage
// (node/frame_stage.hpp). kairo_encode_bench compares that layout with per-eye encoding here.
// Encodes a rendered stereo frame in either layout: one stream with both eyes side by side, or one encoder
// per eye running in parallel (the right eye on a worker thread, the left on the caller's). Both eyes'
// access units carry the frame's frame id and pose id; per-eye bitrate is split by pixel area (half each).
#include <array>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "encoder/video_encoder.hpp"

namespace kairo {

enum class StereoLayout { kSideBySide, kPerEye };

class StereoEncoder {
 public:
  // `config.width`/`height` are one eye's size; the side-by-side picture is twice as wide.
  StereoEncoder(const EncoderConfig& config, StereoLayout layout);
  ~StereoEncoder();

  // pictures: [0] the side-by-side picture, or [0] left and [1] right. Returns 1 or 2 access units, valid
  // until the next call.
  std::span<const AccessUnit* const> encode(uint64_t frame_id, uint64_t pose_id,
                                            std::span<const Nv12View> pictures, bool keyframe);
  void set_bitrate(int64_t total_bps);
  void request_keyframe();
  StereoLayout layout() const { return layout_; }
  const VideoEncoder& encoder(int index) const { return *encoders_[index]; }

 private:
  void right_eye_worker();

  StereoLayout layout_;
  std::array<std::unique_ptr<VideoEncoder>, 2> encoders_;
  std::array<const AccessUnit*, 2> out_{};
  // Hand-off to the right-eye thread: one job at a time, no allocation.
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  bool job_ready_ = false, job_done_ = false, stopping_ = false;
  EncodeRequest right_request_;
  std::exception_ptr right_error_;
  std::thread worker_;
};

}  // namespace kairo
