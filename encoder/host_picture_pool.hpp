#pragma once
// The pictures an encoder lends to the renderer's NV12 pass (VideoEncoder::acquire_host_picture): a fixed
// set of aligned, side-by-side NV12 buffers at the size the encoder was created with, allocated on first use
// and never per frame. The renderer's thread lends and the encoder's thread takes back: the mutex guards only
// the flags. Internal to encoder/.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>

#include "core/error.hpp"
#include "encoder/video_encoder.hpp"

namespace kairo {

class HostPicturePool {
 public:
  static constexpr int kPictures = 4;  // frames in flight (3) and the one being encoded

  HostPicturePool(int width, int height) : width_(width), height_(height) {}

  // A free picture aligned to `alignment` bytes; nullopt when the pool was allocated at an alignment this
  // does not divide, or every picture is lent or `in_use(slot)` (still read by the encoder). `on_allocate`
  // runs once, under the lock, right after the memory is allocated (to wrap it for a library).
  template <typename InUse, typename OnAllocate>
  std::optional<HostPicture> lend(size_t alignment, InUse&& in_use, OnAllocate&& on_allocate) {
    std::lock_guard lock(mutex_);
    if (!ready_) {
      allocate(alignment < 64 ? 64 : alignment);
      on_allocate();
    }
    if (alignment == 0 || alignment_ % alignment != 0) return std::nullopt;
    for (int slot = 0; slot < kPictures; ++slot) {
      if (lent_[size_t(slot)] || in_use(slot)) continue;
      lent_[size_t(slot)] = true;
      return picture(slot);
    }
    return std::nullopt;
  }
  // The slot of a picture this pool lent (and has not taken back); throws kairo::Error (invalid input) else.
  int slot_of(const HostPicture& lent) const {
    std::lock_guard lock(mutex_);
    if (lent.slot < 0 || lent.slot >= kPictures || !lent_[size_t(lent.slot)] ||
        memory_[size_t(lent.slot)].get() != lent.data)
      throw_invalid_input("picture was not lent by this encoder");
    return lent.slot;
  }
  void take_back(const HostPicture& lent) {
    std::lock_guard lock(mutex_);
    if (lent.slot >= 0 && lent.slot < kPictures) lent_[size_t(lent.slot)] = false;
  }

  // Valid once allocated (after the first lend).
  HostPicture picture(int slot) const {
    return HostPicture{.data = memory_[size_t(slot)].get(),
                       .size = size_,
                       .y_offset = 0,
                       .y_pitch = pitch_,
                       .uv_offset = uv_offset_,
                       .uv_pitch = pitch_,
                       .width = width_,
                       .height = height_,
                       .slot = slot};
  }

 private:
  void allocate(size_t alignment) {
    const auto round_up = [](size_t n, size_t to) { return (n + to - 1) / to * to; };
    pitch_ = uint32_t(round_up(size_t(width_), 64));
    uv_offset_ = uint32_t(size_t(pitch_) * size_t(height_));
    size_ = round_up(size_t(uv_offset_) + size_t(pitch_) * size_t(height_ / 2), alignment);
    alignment_ = alignment;
    for (auto& memory : memory_) {
      memory.reset(static_cast<uint8_t*>(std::aligned_alloc(alignment, size_)));
      if (!memory) throw_runtime("out of memory for the encoder's picture pool");
    }
    ready_ = true;
  }

  const int width_, height_;
  mutable std::mutex mutex_;
  std::array<std::unique_ptr<uint8_t, void (*)(void*)>, kPictures> memory_{
      {{nullptr, std::free}, {nullptr, std::free}, {nullptr, std::free}, {nullptr, std::free}}};
  std::array<bool, kPictures> lent_{};
  bool ready_ = false;
  size_t alignment_ = 0, size_ = 0;
  uint32_t pitch_ = 0, uv_offset_ = 0;
};

}  // namespace kairo
