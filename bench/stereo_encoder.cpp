#include "bench/stereo_encoder.hpp"

#include "core/error.hpp"

namespace kairo {

StereoEncoder::StereoEncoder(const EncoderConfig& config, StereoLayout layout) : layout_(layout) {
  EncoderConfig c = config;
  if (layout == StereoLayout::kSideBySide) {
    c.width = 2 * config.width;
    encoders_[0] = VideoEncoder::open(c);
    return;
  }
  c.bitrate_bps = config.bitrate_bps / 2;
  c.threads = config.threads > 0 ? std::max(1, config.threads / 2) : 0;
  encoders_[0] = VideoEncoder::open(c);
  c.backend = encoders_[0]->backend();  // both eyes on the same backend
  encoders_[1] = VideoEncoder::open(c);
  worker_ = std::thread([this] { right_eye_worker(); });
}

StereoEncoder::~StereoEncoder() {
  if (worker_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    worker_.join();
  }
}

void StereoEncoder::right_eye_worker() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return job_ready_ || stopping_; });
    if (stopping_) return;
    job_ready_ = false;
    lock.unlock();
    std::exception_ptr error;
    const AccessUnit* au = nullptr;
    try {
      au = &encoders_[1]->encode(right_request_);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    out_[1] = au;
    right_error_ = error;
    job_done_ = true;
    done_.notify_one();
  }
}

std::span<const AccessUnit* const> StereoEncoder::encode(uint64_t frame_id, uint64_t pose_id,
                                                         std::span<const Nv12View> pictures, bool keyframe) {
  if (layout_ == StereoLayout::kSideBySide) {
    if (pictures.size() != 1) throw_invalid_input("side-by-side encoding takes one picture");
    out_[0] = &encoders_[0]->encode(EncodeRequest{
        .frame_id = frame_id, .pose_id = pose_id, .eye = -1, .picture = pictures[0], .keyframe = keyframe});
    return {out_.data(), 1};
  }
  if (pictures.size() != 2) throw_invalid_input("per-eye encoding takes two pictures");
  {
    std::lock_guard lock(mutex_);
    right_request_ = EncodeRequest{
        .frame_id = frame_id, .pose_id = pose_id, .eye = 1, .picture = pictures[1], .keyframe = keyframe};
    job_ready_ = true;
    job_done_ = false;
  }
  wake_.notify_one();
  std::exception_ptr left_error;
  try {
    out_[0] = &encoders_[0]->encode(EncodeRequest{
        .frame_id = frame_id, .pose_id = pose_id, .eye = 0, .picture = pictures[0], .keyframe = keyframe});
  } catch (...) {
    left_error = std::current_exception();
  }
  std::unique_lock lock(mutex_);
  done_.wait(lock, [this] { return job_done_; });
  if (left_error) std::rethrow_exception(left_error);
  if (right_error_) std::rethrow_exception(right_error_);
  return {out_.data(), 2};
}

void StereoEncoder::set_bitrate(int64_t total_bps) {
  if (layout_ == StereoLayout::kSideBySide) {
    encoders_[0]->set_bitrate(total_bps);
  } else {
    encoders_[0]->set_bitrate(total_bps / 2);
    encoders_[1]->set_bitrate(total_bps / 2);
  }
}

void StereoEncoder::request_keyframe() {
  for (auto& e : encoders_)
    if (e) e->request_keyframe();
}

}  // namespace kairo
