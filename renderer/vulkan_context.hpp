#pragma once
// The Vulkan instance and logical device Kairo renders with: headless (no surface, no display server).
// Light header on purpose: vulkan_raii.hpp stays inside renderer/*.cpp (see vulkan_impl.hpp).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kairo {

struct VulkanOptions {
  // Empty: the best device (discrete > integrated > virtual > CPU). A number picks that index from
  // list_gpus(); any other text picks the first device whose name contains it (case-insensitive).
  std::string gpu;
  // Debian's vulkan-validationlayers; every message is counted (tests fail on any). Also on with
  // KAIRO_VALIDATION=1.
  bool validation = false;
};

struct GpuInfo {
  uint32_t index = 0;
  std::string name;
  std::string type;  // discrete, integrated, virtual, cpu, other
  uint32_t api_version = 0;
};

class VulkanContext {
 public:
  // Throws kairo::Error naming the reason: no Vulkan loader/driver, no device, device lacks a feature.
  static std::shared_ptr<VulkanContext> create(const VulkanOptions& options = {});
  ~VulkanContext();
  VulkanContext(const VulkanContext&) = delete;
  VulkanContext& operator=(const VulkanContext&) = delete;

  const GpuInfo& gpu() const;
  bool validation_enabled() const;
  // Validation warnings and errors seen since creation; messages themselves go to the log.
  uint64_t validation_message_count() const;
  bool has_timestamps() const;
  bool imports_host_memory() const;  // VK_EXT_external_memory_host
  // What host memory imported into the device must be aligned to (minImportedHostPointerAlignment).
  size_t host_import_alignment() const;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit VulkanContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Every Vulkan device the loader sees; empty (not an error) when there is none.
std::vector<GpuInfo> list_gpus();

}  // namespace kairo
