#pragma once
// Private to renderer/: the vk::raii objects behind VulkanContext, plus small resource helpers.
// Heavy header (vulkan_raii.hpp): never include it from a public header.
#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <vulkan/vulkan_raii.hpp>

#include "renderer/vulkan_context.hpp"

namespace kairo {

struct Buffer {
  vk::raii::Buffer buffer = nullptr;
  vk::raii::DeviceMemory memory = nullptr;
  void* mapped = nullptr;  // host-visible buffers stay mapped for their lifetime
  vk::DeviceSize size = 0;
  // When the memory is host memory we allocated and imported (VK_EXT_external_memory_host).
  std::unique_ptr<uint8_t, void (*)(void*)> host_allocation{nullptr, nullptr};
};

struct Image {
  vk::raii::Image image = nullptr;
  vk::raii::DeviceMemory memory = nullptr;
  vk::raii::ImageView view = nullptr;
  vk::Format format = vk::Format::eUndefined;
  vk::Extent3D extent{};
  uint32_t mip_levels = 1;
  uint32_t layers = 1;
};

// One image layout transition: where the image was (layout, the stages and writes that must finish) and
// where it goes (layout, the stages and accesses that wait). The renderer's one way to write a barrier.
struct ImageTransition {
  vk::ImageLayout from = vk::ImageLayout::eUndefined, to = vk::ImageLayout::eUndefined;
  vk::PipelineStageFlags2 src_stage{}, dst_stage{};
  vk::AccessFlags2 src_access{}, dst_access{};
};
inline vk::ImageMemoryBarrier2 image_barrier(vk::Image image, const vk::ImageSubresourceRange& range,
                                             const ImageTransition& t) {
  return vk::ImageMemoryBarrier2{.srcStageMask = t.src_stage,
                                 .srcAccessMask = t.src_access,
                                 .dstStageMask = t.dst_stage,
                                 .dstAccessMask = t.dst_access,
                                 .oldLayout = t.from,
                                 .newLayout = t.to,
                                 .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                 .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
                                 .image = image,
                                 .subresourceRange = range};
}
inline void transition_image(vk::CommandBuffer cmd, vk::Image image, const vk::ImageSubresourceRange& range,
                             const ImageTransition& t) {
  const vk::ImageMemoryBarrier2 barrier = image_barrier(image, range, t);
  cmd.pipelineBarrier2(vk::DependencyInfo{.imageMemoryBarrierCount = 1, .pImageMemoryBarriers = &barrier});
}

struct VulkanContext::Impl {
  vk::raii::Context context;
  vk::raii::Instance instance = nullptr;
  vk::raii::DebugUtilsMessengerEXT messenger = nullptr;
  vk::raii::PhysicalDevice physical_device = nullptr;
  vk::raii::Device device = nullptr;
  vk::raii::Queue queue = nullptr;
  uint32_t queue_family = 0;
  GpuInfo info;
  bool validation = false;
  bool debug_names = false;
  bool timestamps = false;
  float timestamp_period_ns = 1.0f;
  bool external_memory_host = false;
  vk::DeviceSize host_import_alignment = 4096;
  vk::PhysicalDeviceMemoryProperties memory_properties;
  std::atomic<uint64_t> validation_messages{0};

  // vkQueueSubmit needs external synchronisation: renderers sharing a device hold this only to submit.
  std::mutex queue_mutex;
  std::once_flag multiview_probe_once;
  bool multiview_reliable = true;
  std::mutex upload_mutex;  // one upload at a time through the shared upload command pool
  vk::raii::CommandPool upload_pool = nullptr;

  uint32_t memory_type(uint32_t type_bits, vk::MemoryPropertyFlags required,
                       vk::MemoryPropertyFlags preferred = {}) const;

  Buffer create_buffer(vk::DeviceSize size, vk::BufferUsageFlags usage, bool host_visible, const char* name);
  // A host-visible buffer backed by memory the device writes straight into; on devices with
  // VK_EXT_external_memory_host it is our own page-aligned allocation imported into Vulkan.
  Buffer create_readback_buffer(vk::DeviceSize size, vk::BufferUsageFlags usage, const char* name);
  Image create_image(vk::Format format, vk::Extent3D extent, uint32_t mip_levels, uint32_t layers,
                     vk::ImageUsageFlags usage, vk::ImageAspectFlags aspect, const char* name);

  // Records with `record`, submits, and waits: only for set-up (scene upload), never in the frame loop.
  void run_once(const std::function<void(vk::CommandBuffer)>& record);

  template <typename Handle>
  void set_name(const Handle& handle, const char* name) const {
    if (!debug_names || name == nullptr) return;
    using Native = typename Handle::CType;
    device.setDebugUtilsObjectNameEXT(vk::DebugUtilsObjectNameInfoEXT{
        .objectType = Handle::objectType,
        .objectHandle = reinterpret_cast<uint64_t>(static_cast<Native>(handle)),
        .pObjectName = name});
  }
};

}  // namespace kairo
