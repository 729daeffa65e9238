#include "node/scene_residency.hpp"

#include <spdlog/spdlog.h>

#include "core/error.hpp"
#include "renderer/gpu_scene.hpp"
#include "renderer/scene_data.hpp"

namespace kairo {

SceneResidency::SceneResidency(uint64_t budget_bytes, std::shared_ptr<VulkanContext> vulkan)
    : budget_bytes_(budget_bytes), vulkan_(std::move(vulkan)) {}

std::shared_ptr<GpuScene> SceneResidency::acquire(const std::filesystem::path& file) {
  // One lock for the whole load: two sessions asking for the same new scene load it once, and the budget
  // is never decided on a stale total. Loads are rare (a scene stays for the next session).
  std::lock_guard lock(mutex_);
  for (auto it = resident_.begin(); it != resident_.end(); ++it) {
    if (it->file != file) continue;
    resident_.splice(resident_.begin(), resident_, it);  // most recently used
    return it->scene;
  }
  const SceneData data = load_scene(file);
  const uint64_t bytes = GpuScene::device_bytes(data);  // known before the upload: nothing half loaded
  if (bytes > budget_bytes_)
    throw_runtime("scene " + file.filename().string() + " needs " + std::to_string(bytes >> 20) +
                  " MiB of device memory, more than the node's scene budget of " +
                  std::to_string(budget_bytes_ >> 20) + " MiB (--scene-memory-mb)");
  evict_unused_until(bytes);
  if (resident_bytes_ + bytes > budget_bytes_)
    throw_runtime("scene " + file.filename().string() + " (" + std::to_string(bytes >> 20) +
                  " MiB) does not fit: the scenes sessions are using hold " +
                  std::to_string(resident_bytes_ >> 20) + " of the node's " +
                  std::to_string(budget_bytes_ >> 20) + " MiB scene budget");
  std::shared_ptr<GpuScene> scene = GpuScene::upload(vulkan_, data);
  resident_.push_front(Resident{.file = file, .scene = scene, .bytes = bytes});
  resident_bytes_ += bytes;
  spdlog::info("scene {} on the device ({} MiB; {} MiB of {} MiB used by {} scenes)",
               file.filename().string(), bytes >> 20, resident_bytes_ >> 20, budget_bytes_ >> 20,
               resident_.size());
  return scene;
}

void SceneResidency::evict_unused_until(uint64_t free_needed) {
  for (auto it = resident_.end(); it != resident_.begin() && resident_bytes_ + free_needed > budget_bytes_;) {
    --it;
    if (it->scene.use_count() > 1) continue;  // a session holds it
    spdlog::info("scene {} evicted from the device ({} MiB): no session uses it",
                 it->file.filename().string(), it->bytes >> 20);
    resident_bytes_ -= it->bytes;
    ++evictions_;
    it = resident_.erase(it);
  }
}

uint64_t SceneResidency::resident_bytes() const {
  std::lock_guard lock(mutex_);
  return resident_bytes_;
}
size_t SceneResidency::resident_scenes() const {
  std::lock_guard lock(mutex_);
  return resident_.size();
}
uint64_t SceneResidency::evictions() const {
  std::lock_guard lock(mutex_);
  return evictions_;
}

}  // namespace kairo
