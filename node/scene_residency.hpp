#pragma once
// The scenes a node keeps on its device, within a memory budget (#16). A scene is uploaded when a session
// first needs it and stays for the next session (loading the stress scene takes seconds on lavapipe); when a
// new one does not fit, scenes no session uses are evicted, least recently used first. A scene that cannot
// fit even then is refused with the reason (the session fails with it), never half loaded.
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <string>

namespace kairo {

class GpuScene;
class VulkanContext;

class SceneResidency {
 public:
  SceneResidency(uint64_t budget_bytes, std::shared_ptr<VulkanContext> vulkan);

  // The scene, loaded if need be. A session holds the returned pointer while it runs: that is what "in use"
  // means. Throws kairo::Error (unavailable) when it does not fit beside the scenes in use.
  std::shared_ptr<GpuScene> acquire(const std::filesystem::path& file);

  uint64_t resident_bytes() const;
  size_t resident_scenes() const;
  uint64_t evictions() const;

 private:
  struct Resident {
    std::filesystem::path file;
    std::shared_ptr<GpuScene> scene;
    uint64_t bytes = 0;
  };
  void evict_unused_until(uint64_t free_needed);

  const uint64_t budget_bytes_;
  std::shared_ptr<VulkanContext> vulkan_;
  mutable std::mutex mutex_;
  std::list<Resident> resident_;  // most recently used first
  uint64_t resident_bytes_ = 0, evictions_ = 0;
};

}  // namespace kairo
