#include <spdlog/spdlog.h>
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"
#include "renderer/vulkan_impl.hpp"

namespace kairo {
namespace {

constexpr const char* kValidationLayer = "VK_LAYER_KHRONOS_validation";

std::string device_type_name(vk::PhysicalDeviceType type) {
  switch (type) {
    case vk::PhysicalDeviceType::eDiscreteGpu:
      return "discrete";
    case vk::PhysicalDeviceType::eIntegratedGpu:
      return "integrated";
    case vk::PhysicalDeviceType::eVirtualGpu:
      return "virtual";
    case vk::PhysicalDeviceType::eCpu:
      return "cpu";
    default:
      return "other";
  }
}

int device_type_rank(vk::PhysicalDeviceType type) {
  switch (type) {
    case vk::PhysicalDeviceType::eDiscreteGpu:
      return 4;
    case vk::PhysicalDeviceType::eIntegratedGpu:
      return 3;
    case vk::PhysicalDeviceType::eVirtualGpu:
      return 2;
    case vk::PhysicalDeviceType::eCpu:
      return 1;
    default:
      return 0;
  }
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool has_extension(const std::vector<vk::ExtensionProperties>& extensions, const char* name) {
  return std::any_of(extensions.begin(), extensions.end(), [&](const vk::ExtensionProperties& e) {
    return std::strcmp(e.extensionName, name) == 0;
  });
}

VKAPI_ATTR VkBool32 VKAPI_CALL on_validation_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT,
                                                     const VkDebugUtilsMessengerCallbackDataEXT* data,
                                                     void* user) {
  auto* counter = static_cast<std::atomic<uint64_t>*>(user);
  counter->fetch_add(1, std::memory_order_relaxed);
  if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)
    spdlog::error("vulkan validation: {}", data->pMessage);
  else
    spdlog::warn("vulkan validation: {}", data->pMessage);
  return VK_FALSE;
}

vk::raii::Instance make_instance(vk::raii::Context& context, bool validation, bool& debug_utils) {
  const vk::ApplicationInfo app{.pApplicationName = "kairo",
                                .applicationVersion = 1,
                                .pEngineName = "kairo",
                                .apiVersion = VK_API_VERSION_1_3};
  std::vector<const char*> layers, extensions;
  const auto available = context.enumerateInstanceExtensionProperties();
  debug_utils = has_extension(available, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) && validation;
  if (validation) {
    const auto available_layers = context.enumerateInstanceLayerProperties();
    const bool found = std::any_of(
        available_layers.begin(), available_layers.end(),
        [](const vk::LayerProperties& l) { return std::strcmp(l.layerName, kValidationLayer) == 0; });
    if (!found)
      throw_runtime(
          "Vulkan validation requested but VK_LAYER_KHRONOS_validation is not installed "
          "(Debian package vulkan-validationlayers)");
    layers.push_back(kValidationLayer);
  }
  if (debug_utils) extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  return vk::raii::Instance(context,
                            vk::InstanceCreateInfo{.pApplicationInfo = &app,
                                                   .enabledLayerCount = uint32_t(layers.size()),
                                                   .ppEnabledLayerNames = layers.data(),
                                                   .enabledExtensionCount = uint32_t(extensions.size()),
                                                   .ppEnabledExtensionNames = extensions.data()});
}

vk::raii::PhysicalDevice choose_device(const vk::raii::Instance& instance, const std::string& wanted) {
  vk::raii::PhysicalDevices devices(instance);
  if (devices.empty())
    throw_runtime(
        "no Vulkan device found: install a Vulkan driver (mesa-vulkan-drivers provides a CPU device)");
  std::vector<size_t> order(devices.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (wanted.empty()) {
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return device_type_rank(devices[a].getProperties().deviceType) >
             device_type_rank(devices[b].getProperties().deviceType);
    });
    return std::move(devices[order.front()]);
  }
  const bool numeric =
      std::all_of(wanted.begin(), wanted.end(), [](unsigned char c) { return std::isdigit(c); });
  if (numeric) {
    const size_t index = std::stoul(wanted);
    if (index >= devices.size())
      throw_invalid_input("--gpu " + wanted + ": only " + std::to_string(devices.size()) +
                          " Vulkan device(s) present");
    return std::move(devices[index]);
  }
  for (auto& device : devices)
    if (lower(device.getProperties().deviceName.data()).find(lower(wanted)) != std::string::npos)
      return std::move(device);
  std::string names;
  for (auto& device : devices)
    names += std::string(names.empty() ? "" : ", ") + device.getProperties().deviceName.data();
  throw_invalid_input("--gpu " + wanted + ": no Vulkan device with that name (have: " + names + ")");
}

}  // namespace

uint32_t VulkanContext::Impl::memory_type(uint32_t type_bits, vk::MemoryPropertyFlags required,
                                          vk::MemoryPropertyFlags preferred) const {
  for (int pass = 0; pass < 2; ++pass) {
    const vk::MemoryPropertyFlags want = pass == 0 ? required | preferred : required;
    for (uint32_t i = 0; i < memory_properties.memoryTypeCount; ++i)
      if ((type_bits & (1u << i)) && (memory_properties.memoryTypes[i].propertyFlags & want) == want)
        return i;
  }
  throw_runtime("no Vulkan memory type with the required properties");
}

Buffer VulkanContext::Impl::create_buffer(vk::DeviceSize size, vk::BufferUsageFlags usage, bool host_visible,
                                          const char* name) {
  Buffer b;
  b.size = size;
  b.buffer = vk::raii::Buffer(device, vk::BufferCreateInfo{.size = size, .usage = usage});
  const auto requirements = b.buffer.getMemoryRequirements();
  const auto required =
      host_visible ? vk::MemoryPropertyFlagBits::eHostVisible | vk::MemoryPropertyFlagBits::eHostCoherent
                   : vk::MemoryPropertyFlagBits::eDeviceLocal;
  const auto preferred = host_visible ? vk::MemoryPropertyFlagBits::eHostCached : vk::MemoryPropertyFlags{};
  b.memory = vk::raii::DeviceMemory(
      device, vk::MemoryAllocateInfo{
                  .allocationSize = requirements.size,
                  .memoryTypeIndex = memory_type(requirements.memoryTypeBits, required, preferred)});
  b.buffer.bindMemory(*b.memory, 0);
  if (host_visible) b.mapped = b.memory.mapMemory(0, VK_WHOLE_SIZE);
  set_name(*b.buffer, name);
  return b;
}

Buffer VulkanContext::Impl::create_readback_buffer(vk::DeviceSize size, vk::BufferUsageFlags usage,
                                                   const char* name) {
  if (!external_memory_host) return create_buffer(size, usage, true, name);
  // Import page-aligned host memory: the device writes the frame where the CPU (encoder, PNG writer) reads
  // it, with no staging copy; on a discrete GPU the writes go straight over PCIe into system memory.
  Buffer b;
  b.size = size;
  const vk::DeviceSize aligned =
      (size + host_import_alignment - 1) / host_import_alignment * host_import_alignment;
  b.host_allocation = {static_cast<uint8_t*>(std::aligned_alloc(host_import_alignment, aligned)), std::free};
  if (!b.host_allocation) throw_runtime("out of host memory for a readback buffer");
  const vk::ExternalMemoryBufferCreateInfo external{
      .handleTypes = vk::ExternalMemoryHandleTypeFlagBits::eHostAllocationEXT};
  b.buffer =
      vk::raii::Buffer(device, vk::BufferCreateInfo{.pNext = &external, .size = aligned, .usage = usage});
  const auto pointer_properties = device.getMemoryHostPointerPropertiesEXT(
      vk::ExternalMemoryHandleTypeFlagBits::eHostAllocationEXT, b.host_allocation.get());
  const auto requirements = b.buffer.getMemoryRequirements();
  const vk::ImportMemoryHostPointerInfoEXT import{
      .handleType = vk::ExternalMemoryHandleTypeFlagBits::eHostAllocationEXT,
      .pHostPointer = b.host_allocation.get()};
  b.memory = vk::raii::DeviceMemory(
      device, vk::MemoryAllocateInfo{
                  .pNext = &import,
                  .allocationSize = aligned,
                  .memoryTypeIndex = memory_type(
                      requirements.memoryTypeBits & pointer_properties.memoryTypeBits,
                      vk::MemoryPropertyFlagBits::eHostVisible | vk::MemoryPropertyFlagBits::eHostCoherent)});
  b.buffer.bindMemory(*b.memory, 0);
  b.mapped = b.host_allocation.get();
  set_name(*b.buffer, name);
  return b;
}

Image VulkanContext::Impl::create_image(vk::Format format, vk::Extent3D extent, uint32_t mip_levels,
                                        uint32_t layers, vk::ImageUsageFlags usage,
                                        vk::ImageAspectFlags aspect, const char* name) {
  Image img;
  img.format = format;
  img.extent = extent;
  img.mip_levels = mip_levels;
  img.layers = layers;
  img.image = vk::raii::Image(device, vk::ImageCreateInfo{.imageType = vk::ImageType::e2D,
                                                          .format = format,
                                                          .extent = extent,
                                                          .mipLevels = mip_levels,
                                                          .arrayLayers = layers,
                                                          .samples = vk::SampleCountFlagBits::e1,
                                                          .tiling = vk::ImageTiling::eOptimal,
                                                          .usage = usage,
                                                          .initialLayout = vk::ImageLayout::eUndefined});
  const auto requirements = img.image.getMemoryRequirements();
  img.memory = vk::raii::DeviceMemory(
      device,
      vk::MemoryAllocateInfo{.allocationSize = requirements.size,
                             .memoryTypeIndex = memory_type(requirements.memoryTypeBits,
                                                            vk::MemoryPropertyFlagBits::eDeviceLocal)});
  img.image.bindMemory(*img.memory, 0);
  img.view = vk::raii::ImageView(
      device,
      vk::ImageViewCreateInfo{
          .image = *img.image,
          .viewType = layers > 1 ? vk::ImageViewType::e2DArray : vk::ImageViewType::e2D,
          .format = format,
          .subresourceRange = {.aspectMask = aspect, .levelCount = mip_levels, .layerCount = layers}});
  set_name(*img.image, name);
  return img;
}

void VulkanContext::Impl::run_once(const std::function<void(vk::CommandBuffer)>& record) {
  std::lock_guard upload_lock(upload_mutex);
  vk::raii::CommandBuffers buffers(
      device,
      vk::CommandBufferAllocateInfo{
          .commandPool = *upload_pool, .level = vk::CommandBufferLevel::ePrimary, .commandBufferCount = 1});
  vk::raii::CommandBuffer& cmd = buffers.front();
  cmd.begin(vk::CommandBufferBeginInfo{.flags = vk::CommandBufferUsageFlagBits::eOneTimeSubmit});
  record(*cmd);
  cmd.end();
  vk::raii::Fence fence(device, vk::FenceCreateInfo{});
  const vk::CommandBuffer handle = *cmd;
  {
    std::lock_guard queue_lock(queue_mutex);
    queue.submit(vk::SubmitInfo{.commandBufferCount = 1, .pCommandBuffers = &handle}, *fence);
  }
  if (device.waitForFences(*fence, VK_TRUE, 60'000'000'000ull) != vk::Result::eSuccess)
    throw_runtime("Vulkan upload did not finish within 60 s");
}

VulkanContext::VulkanContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VulkanContext::~VulkanContext() {
  if (impl_ && *impl_->device) impl_->device.waitIdle();
}

std::shared_ptr<VulkanContext> VulkanContext::create(const VulkanOptions& options) {
  auto impl = std::make_unique<Impl>();
  try {
    const char* env = std::getenv("KAIRO_VALIDATION");
    impl->validation = options.validation || (env != nullptr && std::string(env) == "1");
    bool debug_utils = false;
    impl->instance = make_instance(impl->context, impl->validation, debug_utils);
    if (debug_utils) {
      impl->messenger = vk::raii::DebugUtilsMessengerEXT(
          impl->instance, vk::DebugUtilsMessengerCreateInfoEXT{
                              .messageSeverity = vk::DebugUtilsMessageSeverityFlagBitsEXT::eWarning |
                                                 vk::DebugUtilsMessageSeverityFlagBitsEXT::eError,
                              .messageType = vk::DebugUtilsMessageTypeFlagBitsEXT::eGeneral |
                                             vk::DebugUtilsMessageTypeFlagBitsEXT::eValidation |
                                             vk::DebugUtilsMessageTypeFlagBitsEXT::ePerformance,
                              .pfnUserCallback = on_validation_message,
                              .pUserData = &impl->validation_messages});
      impl->debug_names = true;
    }
    impl->physical_device = choose_device(impl->instance, options.gpu);
    const auto properties = impl->physical_device.getProperties();
    impl->info = GpuInfo{.index = 0,
                         .name = properties.deviceName.data(),
                         .type = device_type_name(properties.deviceType),
                         .api_version = properties.apiVersion};
    if (properties.apiVersion < VK_API_VERSION_1_3)
      throw_runtime("Vulkan device " + impl->info.name + " supports only Vulkan " +
                    std::to_string(VK_API_VERSION_MAJOR(properties.apiVersion)) + "." +
                    std::to_string(VK_API_VERSION_MINOR(properties.apiVersion)) + "; Kairo needs 1.3");

    const auto families = impl->physical_device.getQueueFamilyProperties();
    const auto wanted_queue = vk::QueueFlagBits::eGraphics | vk::QueueFlagBits::eCompute;
    auto family = std::find_if(families.begin(), families.end(), [&](const vk::QueueFamilyProperties& f) {
      return (f.queueFlags & wanted_queue) == wanted_queue;
    });
    if (family == families.end())
      throw_runtime("Vulkan device " + impl->info.name + " has no graphics+compute queue");
    impl->queue_family = uint32_t(family - families.begin());
    impl->timestamps = family->timestampValidBits > 0 && properties.limits.timestampComputeAndGraphics;
    impl->timestamp_period_ns = properties.limits.timestampPeriod;

    const auto extensions = impl->physical_device.enumerateDeviceExtensionProperties();
    std::vector<const char*> device_extensions;
    if (has_extension(extensions, VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME)) {
      device_extensions.push_back(VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
      impl->external_memory_host = true;
      const auto chain =
          impl->physical_device.getProperties2<vk::PhysicalDeviceProperties2,
                                               vk::PhysicalDeviceExternalMemoryHostPropertiesEXT>();
      impl->host_import_alignment = std::max<vk::DeviceSize>(
          chain.get<vk::PhysicalDeviceExternalMemoryHostPropertiesEXT>().minImportedHostPointerAlignment, 64);
    }

    const auto supported =
        impl->physical_device.getFeatures2<vk::PhysicalDeviceFeatures2, vk::PhysicalDeviceVulkan11Features,
                                           vk::PhysicalDeviceVulkan13Features>();
    if (!supported.get<vk::PhysicalDeviceVulkan11Features>().multiview)
      throw_runtime("Vulkan device " + impl->info.name + " lacks multiview (VK_KHR_multiview)");
    const auto& v13 = supported.get<vk::PhysicalDeviceVulkan13Features>();
    if (!v13.dynamicRendering || !v13.synchronization2)
      throw_runtime("Vulkan device " + impl->info.name + " lacks dynamic rendering or synchronization2");

    vk::PhysicalDeviceVulkan13Features enable13{.synchronization2 = VK_TRUE, .dynamicRendering = VK_TRUE};
    vk::PhysicalDeviceVulkan11Features enable11{.pNext = &enable13, .multiview = VK_TRUE};
    vk::PhysicalDeviceFeatures2 enable{.pNext = &enable11};
    const float priority = 1.0f;
    const vk::DeviceQueueCreateInfo queue_info{
        .queueFamilyIndex = impl->queue_family, .queueCount = 1, .pQueuePriorities = &priority};
    impl->device =
        vk::raii::Device(impl->physical_device,
                         vk::DeviceCreateInfo{.pNext = &enable,
                                              .queueCreateInfoCount = 1,
                                              .pQueueCreateInfos = &queue_info,
                                              .enabledExtensionCount = uint32_t(device_extensions.size()),
                                              .ppEnabledExtensionNames = device_extensions.data()});
    impl->queue = vk::raii::Queue(impl->device, impl->queue_family, 0);
    impl->memory_properties = impl->physical_device.getMemoryProperties();
    impl->upload_pool = vk::raii::CommandPool(
        impl->device, vk::CommandPoolCreateInfo{.flags = vk::CommandPoolCreateFlagBits::eTransient,
                                                .queueFamilyIndex = impl->queue_family});
  } catch (const vk::Error& e) {
    // vk::raii throws on the loader's failures (no ICD, incompatible driver): one clear line for the user.
    throw_runtime(std::string("Vulkan initialisation failed: ") + e.what());
  }
  spdlog::info("vulkan device: {} ({}), validation {}, timestamps {}, external host memory {}",
               impl->info.name, impl->info.type, impl->validation ? "on" : "off", impl->timestamps,
               impl->external_memory_host);
  return std::shared_ptr<VulkanContext>(new VulkanContext(std::move(impl)));
}

const GpuInfo& VulkanContext::gpu() const {
  return impl_->info;
}
bool VulkanContext::validation_enabled() const {
  return impl_->validation;
}
uint64_t VulkanContext::validation_message_count() const {
  return impl_->validation_messages.load();
}
bool VulkanContext::has_timestamps() const {
  return impl_->timestamps;
}
bool VulkanContext::imports_host_memory() const {
  return impl_->external_memory_host;
}
size_t VulkanContext::host_import_alignment() const {
  return size_t(impl_->host_import_alignment);
}

std::vector<GpuInfo> list_gpus() {
  std::vector<GpuInfo> gpus;
  try {
    vk::raii::Context context;
    const vk::ApplicationInfo app{.pApplicationName = "kairo", .apiVersion = VK_API_VERSION_1_3};
    vk::raii::Instance instance(context, vk::InstanceCreateInfo{.pApplicationInfo = &app});
    vk::raii::PhysicalDevices devices(instance);
    for (uint32_t i = 0; i < devices.size(); ++i) {
      const auto p = devices[i].getProperties();
      gpus.push_back(GpuInfo{.index = i,
                             .name = p.deviceName.data(),
                             .type = device_type_name(p.deviceType),
                             .api_version = p.apiVersion});
    }
  } catch (const vk::Error&) {
    // no loader or no driver: an empty list
  }
  return gpus;
}

}  // namespace kairo
