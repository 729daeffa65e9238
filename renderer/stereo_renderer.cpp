#include "renderer/stereo_renderer.hpp"

#include <chrono>
#include <cmath>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "renderer/gpu_scene_impl.hpp"
#include "renderer/mesh_lod.hpp"
#include "shaders/shaders.hpp"

namespace kairo {
namespace {

// std140 layout of FrameUniforms in shaders/common.glsl.
struct FrameUniforms {
  glm::mat4 view_projection[2];
  glm::vec4 eye_position[2];
  glm::vec4 light_direction;
  glm::vec4 light_color;
  glm::vec4 sky_color;
  glm::vec4 ground_color;
};

struct DrawConstants {
  glm::mat4 model;
  glm::mat4 normal_matrix;
};
static_assert(sizeof(DrawConstants) == 128, "the push-constant budget every device guarantees");

struct Nv12Params {
  uint32_t eye_width, eye_height, per_eye, y_offset, y_pitch, uv_offset, uv_pitch, picture_stride;
  uint32_t source_width, source_height, pad0, pad1;
  std::array<glm::vec4, 4> warp;  // [eye * 2 + axis]: a, b, coded a, coded b
};
static_assert(sizeof(Nv12Params) == 112, "within the 128 push-constant bytes every device guarantees");

constexpr vk::Format kColorFormat = vk::Format::eR8G8B8A8Unorm;  // holds sRGB-encoded values (see scene.frag)
constexpr vk::Format kDepthFormat = vk::Format::eD32Sfloat;
constexpr uint32_t kBothEyes = 0b11;                     // multiview mask: layer 0 left, layer 1 right
constexpr uint64_t kFenceTimeoutNs = 20'000'000'000ull;  // a device that stalls this long is broken
constexpr std::array<float, 4> kClearColor{0.62f, 0.70f, 0.80f, 1.0f};  // sky, sRGB-encoded
// The scene's lighting (scene.frag): one sun and a sky/ground ambient term, linear RGB.
const glm::vec3 kSunDirection = glm::normalize(glm::vec3(0.4f, 1.0f, 0.3f));
constexpr glm::vec4 kSunColor{2.6f, 2.5f, 2.3f, 0.0f};
constexpr glm::vec4 kSkyColor{0.42f, 0.46f, 0.55f, 0.0f};
constexpr glm::vec4 kGroundColor{0.16f, 0.14f, 0.12f, 0.0f};

// The frame's color target as the passes after the scene pass see it: its layout and the last stage that
// touched it, so each pass asks for the layout it needs with one barrier (no layouts tracked by hand).
struct ColorImageState {
  vk::Image image;
  vk::ImageLayout layout = vk::ImageLayout::eColorAttachmentOptimal;
  vk::PipelineStageFlags2 stage = vk::PipelineStageFlagBits2::eColorAttachmentOutput;
  vk::AccessFlags2 access = vk::AccessFlagBits2::eColorAttachmentWrite;

  void require(const vk::raii::CommandBuffer& cmd, vk::ImageLayout to, vk::PipelineStageFlags2 next_stage,
               vk::AccessFlags2 next_access) {
    transition_image(*cmd, image,
                     {.aspectMask = vk::ImageAspectFlagBits::eColor, .levelCount = 1, .layerCount = 2},
                     ImageTransition{.from = layout,
                                     .to = to,
                                     .src_stage = stage,
                                     .dst_stage = next_stage,
                                     .src_access = access,
                                     .dst_access = next_access});
    layout = to;
    stage = next_stage;
    access = {};  // reads need no availability operation
  }
};

vk::raii::ShaderModule shader_module(const vk::raii::Device& device, std::span<const uint32_t> spirv) {
  return vk::raii::ShaderModule(
      device, vk::ShaderModuleCreateInfo{.codeSize = spirv.size_bytes(), .pCode = spirv.data()});
}

enum class SlotState { kFree, kInFlight, kCollected };

struct Slot {
  vk::raii::CommandBuffer cmd = nullptr;
  vk::raii::Fence fence = nullptr;
  vk::raii::QueryPool queries = nullptr;
  Image color;
  Image depth;
  Buffer uniforms;
  Buffer rgba;
  Buffer nv12;
  vk::raii::DescriptorSet frame_set = nullptr;
  // Per-eye fallback only: the right eye's uniforms in slot 0 of their own block, and one view per layer.
  Buffer right_uniforms;
  vk::raii::DescriptorSet right_frame_set = nullptr;
  std::array<vk::raii::ImageView, 2> color_layers{nullptr, nullptr};
  std::array<vk::raii::ImageView, 2> depth_layers{nullptr, nullptr};
  vk::raii::DescriptorSet nv12_set = nullptr;
  vk::Buffer nv12_bound;  // the buffer nv12_set currently points at
  SlotState state = SlotState::kFree;
  bool rgba_requested = false;
  RenderedFrame frame;
};

}  // namespace

struct StereoRenderer::Impl {
  std::shared_ptr<GpuScene> scene;
  VulkanContext::Impl& vk_ctx;
  RendererConfig config;
  bool multiview = true;
  vk::raii::DescriptorSetLayout frame_layout = nullptr;
  vk::raii::DescriptorSetLayout nv12_layout = nullptr;
  vk::raii::PipelineLayout scene_pipeline_layout = nullptr;
  vk::raii::PipelineLayout nv12_pipeline_layout = nullptr;
  // One scene pipeline per combination of maps the scene's materials have (GpuScene::Impl::material_maps,
  // scene.frag's specialisation constants); null for combinations no material has.
  std::vector<vk::raii::Pipeline> scene_pipelines;
  vk::raii::Pipeline nv12_pipeline = nullptr;
  vk::raii::Pipeline nv12_resample_pipeline = nullptr;  // FOVEATED = true: warped or scaled
  vk::raii::DescriptorPool descriptor_pool = nullptr;
  vk::raii::CommandPool command_pool = nullptr;
  std::vector<Slot> slots;
  std::vector<int> order;  // ring of in-flight slot indices, oldest first; capacity fixed at construction
  std::vector<uint8_t> draw_lods;  // per scene draw: the level of detail drawn last (select_lod's hysteresis)
  size_t order_head = 0;
  size_t order_count = 0;
  size_t nv12_picture_bytes = 0;
  // Encoder-owned NV12 destinations imported once and reused (a VA-API pool has a handful of surfaces).
  struct ImportedTarget {
    void* host = nullptr;
    Buffer buffer;
  };
  std::vector<ImportedTarget> imported;

  vk::Buffer import_target(const ExternalNv12Target& target);

  Impl(std::shared_ptr<GpuScene> s, const RendererConfig& c)
      : scene(std::move(s)), vk_ctx(scene->context().impl()), config(c) {}

  void create_pipelines();
  void create_slots();
  // One frame's commands, as passes that say what they read and write (as Filament's frame graph does):
  void record(Slot& slot, const FrameRequest& request);
  void choose_lods(Slot& slot, const StereoView& view);
  void write_uniforms(Slot& slot, const StereoView& view);  // -> the slot's uniform buffers
  // scene + dynamic draws + uniforms -> color and depth attachments (one multiview pass, or one per eye)
  void scene_pass(Slot& slot, const FrameRequest& request);
  // color (GENERAL) -> NV12 buffer: BT.709, foveated or scaled to the coded size
  void nv12_pass(Slot& slot, const FrameRequest& request, ColorImageState& color);
  // color (TRANSFER_SRC) -> RGBA buffer, both eyes side by side
  void rgba_copy_pass(Slot& slot, ColorImageState& color);
};

void StereoRenderer::Impl::create_pipelines() {
  const vk::raii::Device& device = vk_ctx.device;
  const vk::DescriptorSetLayoutBinding frame_binding{
      .binding = 0,
      .descriptorType = vk::DescriptorType::eUniformBuffer,
      .descriptorCount = 1,
      .stageFlags = vk::ShaderStageFlagBits::eVertex | vk::ShaderStageFlagBits::eFragment};
  frame_layout = vk::raii::DescriptorSetLayout(
      device, vk::DescriptorSetLayoutCreateInfo{.bindingCount = 1, .pBindings = &frame_binding});
  const std::array<vk::DescriptorSetLayout, 2> set_layouts{*frame_layout, *scene->impl().material_layout};
  const vk::PushConstantRange draw_range{
      .stageFlags = vk::ShaderStageFlagBits::eVertex, .offset = 0, .size = sizeof(DrawConstants)};
  scene_pipeline_layout =
      vk::raii::PipelineLayout(device, vk::PipelineLayoutCreateInfo{.setLayoutCount = 2,
                                                                    .pSetLayouts = set_layouts.data(),
                                                                    .pushConstantRangeCount = 1,
                                                                    .pPushConstantRanges = &draw_range});

  const auto vert = shader_module(device, shaders::scene_vert());
  const auto frag = shader_module(device, shaders::scene_frag());
  const std::array<vk::PipelineShaderStageCreateInfo, 2> stages{
      vk::PipelineShaderStageCreateInfo{
          .stage = vk::ShaderStageFlagBits::eVertex, .module = *vert, .pName = "main"},
      vk::PipelineShaderStageCreateInfo{
          .stage = vk::ShaderStageFlagBits::eFragment, .module = *frag, .pName = "main"}};
  const vk::VertexInputBindingDescription binding{
      .binding = 0, .stride = sizeof(Vertex), .inputRate = vk::VertexInputRate::eVertex};
  const std::array<vk::VertexInputAttributeDescription, 4> attributes{
      vk::VertexInputAttributeDescription{.location = 0,
                                          .binding = 0,
                                          .format = vk::Format::eR32G32B32Sfloat,
                                          .offset = offsetof(Vertex, position)},
      vk::VertexInputAttributeDescription{.location = 1,
                                          .binding = 0,
                                          .format = vk::Format::eR32G32B32Sfloat,
                                          .offset = offsetof(Vertex, normal)},
      vk::VertexInputAttributeDescription{
          .location = 2, .binding = 0, .format = vk::Format::eR32G32Sfloat, .offset = offsetof(Vertex, uv)},
      vk::VertexInputAttributeDescription{.location = 3,
                                          .binding = 0,
                                          .format = vk::Format::eR32G32B32A32Sfloat,
                                          .offset = offsetof(Vertex, tangent)}};
  const vk::PipelineVertexInputStateCreateInfo vertex_input{
      .vertexBindingDescriptionCount = 1,
      .pVertexBindingDescriptions = &binding,
      .vertexAttributeDescriptionCount = uint32_t(attributes.size()),
      .pVertexAttributeDescriptions = attributes.data()};
  const vk::PipelineInputAssemblyStateCreateInfo input_assembly{.topology =
                                                                    vk::PrimitiveTopology::eTriangleList};
  const vk::Viewport viewport{.x = 0,
                              .y = 0,
                              .width = float(config.eye_width),
                              .height = float(config.eye_height),
                              .minDepth = 0,
                              .maxDepth = 1};
  const vk::Rect2D scissor{.offset = {0, 0},
                           .extent = {uint32_t(config.eye_width), uint32_t(config.eye_height)}};
  const vk::PipelineViewportStateCreateInfo viewport_state{
      .viewportCount = 1, .pViewports = &viewport, .scissorCount = 1, .pScissors = &scissor};
  // No culling: imported models often have inconsistent winding; scene.frag lights back faces correctly.
  const vk::PipelineRasterizationStateCreateInfo rasterization{.polygonMode = vk::PolygonMode::eFill,
                                                               .cullMode = vk::CullModeFlagBits::eNone,
                                                               .frontFace = vk::FrontFace::eCounterClockwise,
                                                               .lineWidth = 1.0f};
  const vk::PipelineMultisampleStateCreateInfo multisample{.rasterizationSamples =
                                                               vk::SampleCountFlagBits::e1};
  // Reverse-Z: nearer is larger, cleared to 0.
  const vk::PipelineDepthStencilStateCreateInfo depth{.depthTestEnable = VK_TRUE,
                                                      .depthWriteEnable = VK_TRUE,
                                                      .depthCompareOp = vk::CompareOp::eGreaterOrEqual};
  const vk::PipelineColorBlendAttachmentState blend_attachment{
      .blendEnable = VK_FALSE,
      .colorWriteMask = vk::ColorComponentFlagBits::eR | vk::ColorComponentFlagBits::eG |
                        vk::ColorComponentFlagBits::eB | vk::ColorComponentFlagBits::eA};
  const vk::PipelineColorBlendStateCreateInfo blend{.attachmentCount = 1, .pAttachments = &blend_attachment};
  const vk::PipelineRenderingCreateInfo rendering{.viewMask = multiview ? kBothEyes : 0u,
                                                  .colorAttachmentCount = 1,
                                                  .pColorAttachmentFormats = &kColorFormat,
                                                  .depthAttachmentFormat = kDepthFormat};
  std::array<vk::SpecializationMapEntry, kTextureSlots> map_entries{};
  for (uint32_t slot = 0; slot < kTextureSlots; ++slot)
    map_entries[slot] = vk::SpecializationMapEntry{
        .constantID = slot, .offset = slot * uint32_t(sizeof(VkBool32)), .size = sizeof(VkBool32)};
  scene_pipelines.clear();
  for (uint32_t maps = 0; maps < (1u << kTextureSlots); ++maps) scene_pipelines.emplace_back(nullptr);
  for (const uint8_t maps : scene->impl().material_maps) {
    if (*scene_pipelines[maps]) continue;
    std::array<VkBool32, kTextureSlots> has_map{};
    for (uint32_t slot = 0; slot < kTextureSlots; ++slot) has_map[slot] = (maps >> slot) & 1u;
    const vk::SpecializationInfo specialisation{.mapEntryCount = uint32_t(map_entries.size()),
                                                .pMapEntries = map_entries.data(),
                                                .dataSize = sizeof(has_map),
                                                .pData = has_map.data()};
    std::array<vk::PipelineShaderStageCreateInfo, 2> variant_stages = stages;
    variant_stages[1].pSpecializationInfo = &specialisation;
    scene_pipelines[maps] =
        vk::raii::Pipeline(device, nullptr,
                           vk::GraphicsPipelineCreateInfo{.pNext = &rendering,
                                                          .stageCount = uint32_t(variant_stages.size()),
                                                          .pStages = variant_stages.data(),
                                                          .pVertexInputState = &vertex_input,
                                                          .pInputAssemblyState = &input_assembly,
                                                          .pViewportState = &viewport_state,
                                                          .pRasterizationState = &rasterization,
                                                          .pMultisampleState = &multisample,
                                                          .pDepthStencilState = &depth,
                                                          .pColorBlendState = &blend,
                                                          .layout = *scene_pipeline_layout});
    vk_ctx.set_name(*scene_pipelines[maps], ("stereo scene pipeline, maps " + std::to_string(maps)).c_str());
  }

  const std::array<vk::DescriptorSetLayoutBinding, 2> nv12_bindings{
      vk::DescriptorSetLayoutBinding{.binding = 0,
                                     .descriptorType = vk::DescriptorType::eStorageImage,
                                     .descriptorCount = 1,
                                     .stageFlags = vk::ShaderStageFlagBits::eCompute},
      vk::DescriptorSetLayoutBinding{.binding = 1,
                                     .descriptorType = vk::DescriptorType::eStorageBuffer,
                                     .descriptorCount = 1,
                                     .stageFlags = vk::ShaderStageFlagBits::eCompute}};
  nv12_layout = vk::raii::DescriptorSetLayout(
      device, vk::DescriptorSetLayoutCreateInfo{.bindingCount = uint32_t(nv12_bindings.size()),
                                                .pBindings = nv12_bindings.data()});
  const vk::PushConstantRange nv12_range{
      .stageFlags = vk::ShaderStageFlagBits::eCompute, .offset = 0, .size = sizeof(Nv12Params)};
  nv12_pipeline_layout =
      vk::raii::PipelineLayout(device, vk::PipelineLayoutCreateInfo{.setLayoutCount = 1,
                                                                    .pSetLayouts = &*nv12_layout,
                                                                    .pushConstantRangeCount = 1,
                                                                    .pPushConstantRanges = &nv12_range});
  const auto comp = shader_module(device, shaders::nv12_comp());
  nv12_pipeline = vk::raii::Pipeline(
      device, nullptr,
      vk::ComputePipelineCreateInfo{
          .stage = {.stage = vk::ShaderStageFlagBits::eCompute, .module = *comp, .pName = "main"},
          .layout = *nv12_pipeline_layout});
  vk_ctx.set_name(*nv12_pipeline, "nv12 conversion pipeline");
  const vk::Bool32 foveated = VK_TRUE;
  const vk::SpecializationMapEntry entry{.constantID = 0, .offset = 0, .size = sizeof(vk::Bool32)};
  const vk::SpecializationInfo specialization{
      .mapEntryCount = 1, .pMapEntries = &entry, .dataSize = sizeof(foveated), .pData = &foveated};
  nv12_resample_pipeline =
      vk::raii::Pipeline(device, nullptr,
                         vk::ComputePipelineCreateInfo{.stage = {.stage = vk::ShaderStageFlagBits::eCompute,
                                                                 .module = *comp,
                                                                 .pName = "main",
                                                                 .pSpecializationInfo = &specialization},
                                                       .layout = *nv12_pipeline_layout});
  vk_ctx.set_name(*nv12_resample_pipeline, "nv12 foveated/scaled conversion pipeline");
}

void StereoRenderer::Impl::create_slots() {
  const vk::raii::Device& device = vk_ctx.device;
  const uint32_t n = uint32_t(config.frames_in_flight);
  const std::array<vk::DescriptorPoolSize, 3> sizes{
      vk::DescriptorPoolSize{.type = vk::DescriptorType::eUniformBuffer, .descriptorCount = 2 * n},
      vk::DescriptorPoolSize{.type = vk::DescriptorType::eStorageImage, .descriptorCount = n},
      vk::DescriptorPoolSize{.type = vk::DescriptorType::eStorageBuffer, .descriptorCount = n}};
  descriptor_pool = vk::raii::DescriptorPool(
      device, vk::DescriptorPoolCreateInfo{.flags = vk::DescriptorPoolCreateFlagBits::eFreeDescriptorSet,
                                           .maxSets = 3 * n,
                                           .poolSizeCount = uint32_t(sizes.size()),
                                           .pPoolSizes = sizes.data()});
  command_pool = vk::raii::CommandPool(
      device, vk::CommandPoolCreateInfo{.flags = vk::CommandPoolCreateFlagBits::eResetCommandBuffer,
                                        .queueFamilyIndex = vk_ctx.queue_family});
  vk::raii::CommandBuffers buffers(
      device,
      vk::CommandBufferAllocateInfo{
          .commandPool = *command_pool, .level = vk::CommandBufferLevel::ePrimary, .commandBufferCount = n});
  const uint32_t w = uint32_t(config.eye_width), h = uint32_t(config.eye_height);
  nv12_picture_bytes = config.nv12 == Nv12Layout::kPerEye ? size_t(w) * h * 3 / 2 : size_t(2 * w) * h * 3 / 2;
  const size_t nv12_bytes = config.nv12 == Nv12Layout::kNone
                                ? 4
                                : nv12_picture_bytes * (config.nv12 == Nv12Layout::kPerEye ? 2 : 1);

  slots.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    Slot& s = slots[i];
    s.cmd = std::move(buffers[i]);
    s.fence = vk::raii::Fence(device, vk::FenceCreateInfo{});
    if (vk_ctx.timestamps)
      s.queries = vk::raii::QueryPool(
          device, vk::QueryPoolCreateInfo{.queryType = vk::QueryType::eTimestamp, .queryCount = 3});
    s.color = vk_ctx.create_image(kColorFormat, {w, h, 1}, 1, 2,
                                  vk::ImageUsageFlagBits::eColorAttachment |
                                      vk::ImageUsageFlagBits::eStorage | vk::ImageUsageFlagBits::eTransferSrc,
                                  vk::ImageAspectFlagBits::eColor, "stereo color");
    s.depth =
        vk_ctx.create_image(kDepthFormat, {w, h, 1}, 1, 2, vk::ImageUsageFlagBits::eDepthStencilAttachment,
                            vk::ImageAspectFlagBits::eDepth, "stereo depth");
    s.uniforms = vk_ctx.create_buffer(sizeof(FrameUniforms), vk::BufferUsageFlagBits::eUniformBuffer, true,
                                      "frame uniforms");
    s.rgba = vk_ctx.create_readback_buffer(vk::DeviceSize(2) * w * h * 4,
                                           vk::BufferUsageFlagBits::eTransferDst, "rgba readback");
    s.nv12 =
        vk_ctx.create_readback_buffer(nv12_bytes, vk::BufferUsageFlagBits::eStorageBuffer, "nv12 readback");

    std::array<vk::DescriptorSetLayout, 3> layouts{*frame_layout, *nv12_layout, *frame_layout};
    vk::raii::DescriptorSets sets(device,
                                  vk::DescriptorSetAllocateInfo{.descriptorPool = *descriptor_pool,
                                                                .descriptorSetCount = multiview ? 2u : 3u,
                                                                .pSetLayouts = layouts.data()});
    s.frame_set = std::move(sets[0]);
    s.nv12_set = std::move(sets[1]);
    if (!multiview) {
      s.right_frame_set = std::move(sets[2]);
      s.right_uniforms = vk_ctx.create_buffer(sizeof(FrameUniforms), vk::BufferUsageFlagBits::eUniformBuffer,
                                              true, "right eye uniforms");
      const vk::DescriptorBufferInfo right_info{
          .buffer = *s.right_uniforms.buffer, .offset = 0, .range = sizeof(FrameUniforms)};
      device.updateDescriptorSets(vk::WriteDescriptorSet{.dstSet = *s.right_frame_set,
                                                         .dstBinding = 0,
                                                         .descriptorCount = 1,
                                                         .descriptorType = vk::DescriptorType::eUniformBuffer,
                                                         .pBufferInfo = &right_info},
                                  {});
      for (uint32_t eye = 0; eye < 2; ++eye) {
        auto layer_view = [&](const Image& image, vk::ImageAspectFlags aspect) {
          return vk::raii::ImageView(
              device,
              vk::ImageViewCreateInfo{
                  .image = *image.image,
                  .viewType = vk::ImageViewType::e2D,
                  .format = image.format,
                  .subresourceRange = {
                      .aspectMask = aspect, .levelCount = 1, .baseArrayLayer = eye, .layerCount = 1}});
        };
        s.color_layers[eye] = layer_view(s.color, vk::ImageAspectFlagBits::eColor);
        s.depth_layers[eye] = layer_view(s.depth, vk::ImageAspectFlagBits::eDepth);
      }
    }
    const vk::DescriptorBufferInfo uniform_info{
        .buffer = *s.uniforms.buffer, .offset = 0, .range = sizeof(FrameUniforms)};
    const vk::DescriptorImageInfo color_info{.imageView = *s.color.view,
                                             .imageLayout = vk::ImageLayout::eGeneral};
    const vk::DescriptorBufferInfo nv12_info{.buffer = *s.nv12.buffer, .offset = 0, .range = VK_WHOLE_SIZE};
    const std::array<vk::WriteDescriptorSet, 3> writes{
        vk::WriteDescriptorSet{.dstSet = *s.frame_set,
                               .dstBinding = 0,
                               .descriptorCount = 1,
                               .descriptorType = vk::DescriptorType::eUniformBuffer,
                               .pBufferInfo = &uniform_info},
        vk::WriteDescriptorSet{.dstSet = *s.nv12_set,
                               .dstBinding = 0,
                               .descriptorCount = 1,
                               .descriptorType = vk::DescriptorType::eStorageImage,
                               .pImageInfo = &color_info},
        vk::WriteDescriptorSet{.dstSet = *s.nv12_set,
                               .dstBinding = 1,
                               .descriptorCount = 1,
                               .descriptorType = vk::DescriptorType::eStorageBuffer,
                               .pBufferInfo = &nv12_info}};
    device.updateDescriptorSets(writes, {});
    s.nv12_bound = *s.nv12.buffer;

    // The frame's views into slot memory never change: set them once.
    const auto* nv12_base = static_cast<const uint8_t*>(s.nv12.mapped);
    if (config.nv12 == Nv12Layout::kSideBySide) {
      s.frame.nv12_pictures = 1;
      s.frame.nv12[0] = Nv12Picture{.y = {nv12_base, size_t(2 * w) * h},
                                    .uv = {nv12_base + size_t(2 * w) * h, size_t(2 * w) * h / 2},
                                    .width = int(2 * w),
                                    .height = int(h)};
    } else if (config.nv12 == Nv12Layout::kPerEye) {
      s.frame.nv12_pictures = 2;
      for (int eye = 0; eye < 2; ++eye) {
        const uint8_t* base = nv12_base + eye * nv12_picture_bytes;
        s.frame.nv12[eye] = Nv12Picture{.y = {base, size_t(w) * h},
                                        .uv = {base + size_t(w) * h, size_t(w) * h / 2},
                                        .width = int(w),
                                        .height = int(h)};
      }
    }
  }
  order.assign(n, -1);
}

vk::Buffer StereoRenderer::Impl::import_target(const ExternalNv12Target& t) {
  const uint32_t picture_width = 2 * uint32_t(config.eye_width);
  const uint64_t needed =
      std::max<uint64_t>(uint64_t(t.y_offset) + uint64_t(t.y_pitch) * config.eye_height,
                         uint64_t(t.uv_offset) + uint64_t(t.uv_pitch) * (config.eye_height / 2));
  if (config.nv12 != Nv12Layout::kSideBySide)
    throw_invalid_input("external NV12 targets need the side-by-side layout");
  if ((t.y_offset | t.y_pitch | t.uv_offset | t.uv_pitch) % 4 != 0 || t.y_pitch < picture_width ||
      t.uv_pitch < picture_width || needed > t.size)
    throw_invalid_input(
        "external NV12 target: offsets and pitches must be multiples of 4 and fit the picture");
  for (const ImportedTarget& i : imported)
    if (i.buffer.size == t.size && i.host == t.host_pointer) return *i.buffer.buffer;
  // A pool lends the same few pictures again and again; imports are never freed while the renderer lives
  // (a frame in flight may still write into one), so their number is bounded.
  constexpr size_t kMaxImportedTargets = 16;
  if (imported.size() >= kMaxImportedTargets)
    throw_invalid_input("more than " + std::to_string(kMaxImportedTargets) + " external NV12 targets");
  const vk::raii::Device& device = vk_ctx.device;
  if (t.host_pointer == nullptr) throw_invalid_input("external NV12 target without memory");
  ImportedTarget imported_target{.host = t.host_pointer, .buffer = {}};
  Buffer& b = imported_target.buffer;
  b.size = t.size;
  if (!vk_ctx.external_memory_host) throw_runtime("this Vulkan device cannot import host memory");
  const vk::ExternalMemoryBufferCreateInfo external{
      .handleTypes = vk::ExternalMemoryHandleTypeFlagBits::eHostAllocationEXT};
  b.buffer = vk::raii::Buffer(
      device, vk::BufferCreateInfo{
                  .pNext = &external, .size = t.size, .usage = vk::BufferUsageFlagBits::eStorageBuffer});
  const auto pointer_properties = device.getMemoryHostPointerPropertiesEXT(
      vk::ExternalMemoryHandleTypeFlagBits::eHostAllocationEXT, t.host_pointer);
  const vk::ImportMemoryHostPointerInfoEXT import{
      .handleType = vk::ExternalMemoryHandleTypeFlagBits::eHostAllocationEXT, .pHostPointer = t.host_pointer};
  const auto requirements = b.buffer.getMemoryRequirements();
  b.memory = vk::raii::DeviceMemory(
      device, vk::MemoryAllocateInfo{.pNext = &import,
                                     .allocationSize = t.size,
                                     .memoryTypeIndex = vk_ctx.memory_type(
                                         requirements.memoryTypeBits & pointer_properties.memoryTypeBits,
                                         vk::MemoryPropertyFlagBits::eHostVisible)});
  b.buffer.bindMemory(*b.memory, 0);
  vk_ctx.set_name(*b.buffer, "external nv12 target");
  imported.push_back(std::move(imported_target));
  return *imported.back().buffer.buffer;
}

void StereoRenderer::Impl::record(Slot& s, const FrameRequest& request) {
  write_uniforms(s, request.view);
  choose_lods(s, request.view);
  const vk::raii::CommandBuffer& cmd = s.cmd;
  cmd.reset();
  cmd.begin(vk::CommandBufferBeginInfo{.flags = vk::CommandBufferUsageFlagBits::eOneTimeSubmit});
  if (vk_ctx.timestamps) {
    cmd.resetQueryPool(*s.queries, 0, 3);
    cmd.writeTimestamp2(vk::PipelineStageFlagBits2::eTopOfPipe, *s.queries, 0);
  }
  scene_pass(s, request);
  if (vk_ctx.timestamps)
    cmd.writeTimestamp2(vk::PipelineStageFlagBits2::eColorAttachmentOutput, *s.queries, 1);
  ColorImageState color{.image = *s.color.image};
  if (config.nv12 != Nv12Layout::kNone) nv12_pass(s, request, color);
  if (request.want_rgba) rgba_copy_pass(s, color);
  // Everything the passes wrote to host-visible buffers, visible to the host once the fence signals.
  const vk::MemoryBarrier2 to_host{
      .srcStageMask = vk::PipelineStageFlagBits2::eComputeShader | vk::PipelineStageFlagBits2::eCopy,
      .srcAccessMask = vk::AccessFlagBits2::eShaderStorageWrite | vk::AccessFlagBits2::eTransferWrite,
      .dstStageMask = vk::PipelineStageFlagBits2::eHost,
      .dstAccessMask = vk::AccessFlagBits2::eHostRead};
  cmd.pipelineBarrier2(vk::DependencyInfo{.memoryBarrierCount = 1, .pMemoryBarriers = &to_host});
  if (vk_ctx.timestamps) cmd.writeTimestamp2(vk::PipelineStageFlagBits2::eAllCommands, *s.queries, 2);
  cmd.end();
}

// One level per draw for both eyes, from the point between them; frames are recorded in order, so the
// hysteresis follows the head's motion frame by frame.
void StereoRenderer::Impl::choose_lods(Slot& s, const StereoView& view) {
  const auto& draws = scene->impl().draws;
  draw_lods.resize(draws.size(), 0);  // once: the scene's draws never change
  const glm::vec3 eye = (view[0].pose.position + view[1].pose.position) * 0.5f;
  const Fov& fov = view[0].fov;
  const float pixels_per_unit = std::max(float(config.eye_width) / (std::tan(fov.right) - std::tan(fov.left)),
                                         float(config.eye_height) / (std::tan(fov.up) - std::tan(fov.down)));
  uint64_t triangles = 0;
  for (size_t i = 0; i < draws.size(); ++i) {
    const GpuDraw& d = draws[i];
    const float distance = std::max(glm::length(d.world_center - eye) - d.world_radius, config.near_plane);
    const int level = select_lod(std::span<const float>(d.world_errors.data(), d.lod_count), draw_lods[i],
                                 distance, pixels_per_unit, config.lod_pixel_error);
    draw_lods[i] = uint8_t(level);
    triangles += d.lods[size_t(level)].index_count / 3;
  }
  s.frame.triangles_drawn = triangles;
}

void StereoRenderer::Impl::write_uniforms(Slot& s, const StereoView& view) {
  FrameUniforms uniforms{};
  for (int eye = 0; eye < 2; ++eye) {
    const EyeView& v = view[eye];
    uniforms.view_projection[eye] = projection_matrix(v.fov, config.near_plane) * view_matrix(v.pose);
    uniforms.eye_position[eye] = glm::vec4(v.pose.position, 1.0f);
  }
  uniforms.light_direction = glm::vec4(kSunDirection, 0.0f);
  uniforms.light_color = kSunColor;
  uniforms.sky_color = kSkyColor;
  uniforms.ground_color = kGroundColor;
  std::memcpy(s.uniforms.mapped, &uniforms, sizeof(uniforms));
  if (!multiview) {
    FrameUniforms right = uniforms;  // the per-eye pass reads slot 0 (gl_ViewIndex is 0 without multiview)
    right.view_projection[0] = uniforms.view_projection[1];
    right.eye_position[0] = uniforms.eye_position[1];
    std::memcpy(s.right_uniforms.mapped, &right, sizeof(right));
  }
}

void StereoRenderer::Impl::scene_pass(Slot& s, const FrameRequest& request) {
  const vk::raii::CommandBuffer& cmd = s.cmd;
  const uint32_t w = uint32_t(config.eye_width), h = uint32_t(config.eye_height);
  // Previous contents are discarded (UNDEFINED); the previous frame's readers are fenced by the slot itself.
  const std::array<vk::ImageMemoryBarrier2, 2> to_attachment{
      image_barrier(*s.color.image,
                    {.aspectMask = vk::ImageAspectFlagBits::eColor, .levelCount = 1, .layerCount = 2},
                    ImageTransition{.from = vk::ImageLayout::eUndefined,
                                    .to = vk::ImageLayout::eColorAttachmentOptimal,
                                    .src_stage = vk::PipelineStageFlagBits2::eComputeShader |
                                                 vk::PipelineStageFlagBits2::eCopy,
                                    .dst_stage = vk::PipelineStageFlagBits2::eColorAttachmentOutput,
                                    .src_access = {},
                                    .dst_access = vk::AccessFlagBits2::eColorAttachmentWrite}),
      image_barrier(*s.depth.image,
                    {.aspectMask = vk::ImageAspectFlagBits::eDepth, .levelCount = 1, .layerCount = 2},
                    ImageTransition{.from = vk::ImageLayout::eUndefined,
                                    .to = vk::ImageLayout::eDepthAttachmentOptimal,
                                    .src_stage = vk::PipelineStageFlagBits2::eLateFragmentTests,
                                    .dst_stage = vk::PipelineStageFlagBits2::eEarlyFragmentTests |
                                                 vk::PipelineStageFlagBits2::eLateFragmentTests,
                                    .src_access = {},
                                    .dst_access = vk::AccessFlagBits2::eDepthStencilAttachmentWrite |
                                                  vk::AccessFlagBits2::eDepthStencilAttachmentRead})};
  cmd.pipelineBarrier2(vk::DependencyInfo{.imageMemoryBarrierCount = uint32_t(to_attachment.size()),
                                          .pImageMemoryBarriers = to_attachment.data()});

  const vk::ClearValue clear_color{.color = {.float32 = kClearColor}};
  const vk::ClearValue clear_depth{.depthStencil = {.depth = 0.0f, .stencil = 0}};
  const GpuScene::Impl& gpu = scene->impl();
  auto draw_pass = [&](vk::ImageView color_view, vk::ImageView depth_view, uint32_t view_mask,
                       vk::DescriptorSet frame_set) {
    const vk::RenderingAttachmentInfo color_attachment{
        .imageView = color_view,
        .imageLayout = vk::ImageLayout::eColorAttachmentOptimal,
        .loadOp = vk::AttachmentLoadOp::eClear,
        .storeOp = vk::AttachmentStoreOp::eStore,
        .clearValue = clear_color};
    const vk::RenderingAttachmentInfo depth_attachment{
        .imageView = depth_view,
        .imageLayout = vk::ImageLayout::eDepthAttachmentOptimal,
        .loadOp = vk::AttachmentLoadOp::eClear,
        .storeOp = vk::AttachmentStoreOp::eDontCare,
        .clearValue = clear_depth};
    cmd.beginRendering(vk::RenderingInfo{.renderArea = {.offset = {0, 0}, .extent = {w, h}},
                                         .layerCount = 1,
                                         .viewMask = view_mask,
                                         .colorAttachmentCount = 1,
                                         .pColorAttachments = &color_attachment,
                                         .pDepthAttachment = &depth_attachment});
    cmd.bindVertexBuffers(0, {*gpu.vertices.buffer}, {vk::DeviceSize(0)});
    cmd.bindIndexBuffer(*gpu.indices.buffer, 0, vk::IndexType::eUint32);
    cmd.bindDescriptorSets(vk::PipelineBindPoint::eGraphics, *scene_pipeline_layout, 0, {frame_set}, {});
    uint32_t bound_material = UINT32_MAX, bound_maps = UINT32_MAX;
    const auto use_material = [&](uint32_t material) {
      if (material == bound_material) return;
      if (const uint32_t maps = gpu.material_maps[material]; maps != bound_maps) {
        cmd.bindPipeline(vk::PipelineBindPoint::eGraphics, *scene_pipelines[maps]);
        bound_maps = maps;
      }
      cmd.bindDescriptorSets(vk::PipelineBindPoint::eGraphics, *scene_pipeline_layout, 1,
                             {*gpu.material_sets[material]}, {});
      bound_material = material;
    };
    for (size_t i = 0; i < gpu.draws.size(); ++i) {
      const GpuDraw& draw = gpu.draws[i];
      use_material(draw.material);
      const DrawConstants constants{.model = draw.model, .normal_matrix = draw.normal_matrix};
      cmd.pushConstants<DrawConstants>(*scene_pipeline_layout, vk::ShaderStageFlagBits::eVertex, 0,
                                       constants);
      const MeshLod& lod = draw.lods[draw_lods[i]];
      cmd.drawIndexed(lod.index_count, 1, lod.first_index, draw.vertex_offset, 0);
    }
    for (const DynamicDraw& d : request.dynamic_draws) {
      use_material(gpu.builtin_material_base + std::min(uint32_t(d.material), kBuiltinMaterials - 1));
      const DrawConstants constants{
          .model = d.model, .normal_matrix = glm::mat4(glm::transpose(glm::inverse(glm::mat3(d.model))))};
      cmd.pushConstants<DrawConstants>(*scene_pipeline_layout, vk::ShaderStageFlagBits::eVertex, 0,
                                       constants);
      const GpuDraw& cube = gpu.unit_cube;
      cmd.drawIndexed(cube.lods[0].index_count, 1, cube.lods[0].first_index, cube.vertex_offset, 0);
    }
    cmd.endRendering();
  };
  if (multiview) {
    draw_pass(*s.color.view, *s.depth.view, kBothEyes, *s.frame_set);  // both eyes, one pass
  } else {
    draw_pass(*s.color_layers[0], *s.depth_layers[0], 0, *s.frame_set);
    draw_pass(*s.color_layers[1], *s.depth_layers[1], 0, *s.right_frame_set);
  }
}

void StereoRenderer::Impl::nv12_pass(Slot& s, const FrameRequest& request, ColorImageState& color) {
  const vk::raii::CommandBuffer& cmd = s.cmd;
  color.require(cmd, vk::ImageLayout::eGeneral, vk::PipelineStageFlagBits2::eComputeShader,
                vk::AccessFlagBits2::eShaderStorageRead);
  const uint32_t w = uint32_t(config.eye_width), h = uint32_t(config.eye_height);
  const bool per_eye = config.nv12 == Nv12Layout::kPerEye;
  const uint32_t cw = request.coded_width > 0 ? uint32_t(request.coded_width) : w;
  const uint32_t ch = request.coded_height > 0 ? uint32_t(request.coded_height) : h;
  const bool resample = cw != w || ch != h || request.foveation.strength > 0;
  const uint32_t picture_width = per_eye ? cw : 2 * cw;
  Nv12Params params{.eye_width = cw,
                    .eye_height = ch,
                    .per_eye = per_eye ? 1u : 0u,
                    .y_offset = 0,
                    .y_pitch = picture_width,
                    .uv_offset = picture_width * ch,
                    .uv_pitch = picture_width,
                    .picture_stride = uint32_t(nv12_picture_bytes),
                    .source_width = w,
                    .source_height = h,
                    .pad0 = 0,
                    .pad1 = 0,
                    .warp = {}};
  for (int eye = 0; eye < 2; ++eye) {
    const FoveationParams& f = request.foveation;
    const AxisWarp x = axis_warp(f.centre[eye].x, f.fovea_radius, f.strength, int(w), int(cw));
    const AxisWarp y = axis_warp(f.centre[eye].y, f.fovea_radius, f.strength, int(h), int(ch));
    params.warp[eye * 2] = glm::vec4(x.a, x.b, x.coded_a, x.coded_b);
    params.warp[eye * 2 + 1] = glm::vec4(y.a, y.b, y.coded_a, y.coded_b);
  }
  // Write into encoder-owned memory when given one (the slot's descriptor is free: its last frame is done).
  const vk::Buffer destination = request.nv12_target ? import_target(*request.nv12_target) : *s.nv12.buffer;
  if (request.nv12_target) {
    params.y_offset = request.nv12_target->y_offset;
    params.y_pitch = request.nv12_target->y_pitch;
    params.uv_offset = request.nv12_target->uv_offset;
    params.uv_pitch = request.nv12_target->uv_pitch;
  }
  if (destination != s.nv12_bound) {
    const vk::DescriptorBufferInfo info{.buffer = destination, .offset = 0, .range = VK_WHOLE_SIZE};
    vk_ctx.device.updateDescriptorSets(
        vk::WriteDescriptorSet{.dstSet = *s.nv12_set,
                               .dstBinding = 1,
                               .descriptorCount = 1,
                               .descriptorType = vk::DescriptorType::eStorageBuffer,
                               .pBufferInfo = &info},
        {});
    s.nv12_bound = destination;
  }
  cmd.bindPipeline(vk::PipelineBindPoint::eCompute, resample ? *nv12_resample_pipeline : *nv12_pipeline);
  cmd.bindDescriptorSets(vk::PipelineBindPoint::eCompute, *nv12_pipeline_layout, 0, {*s.nv12_set}, {});
  cmd.pushConstants<Nv12Params>(*nv12_pipeline_layout, vk::ShaderStageFlagBits::eCompute, 0, params);
  const uint32_t blocks_x = picture_width / 4, blocks_y = ch / 2;
  cmd.dispatch((blocks_x + 7) / 8, (blocks_y + 7) / 8, per_eye ? 2 : 1);
}

void StereoRenderer::Impl::rgba_copy_pass(Slot& s, ColorImageState& color) {
  const vk::raii::CommandBuffer& cmd = s.cmd;
  color.require(cmd, vk::ImageLayout::eTransferSrcOptimal, vk::PipelineStageFlagBits2::eCopy,
                vk::AccessFlagBits2::eTransferRead);
  const uint32_t w = uint32_t(config.eye_width), h = uint32_t(config.eye_height);
  // Both layers into one buffer, side by side: row length 2W, the right eye starting W pixels in.
  std::array<vk::BufferImageCopy, 2> regions{};
  for (uint32_t eye = 0; eye < 2; ++eye)
    regions[eye] = vk::BufferImageCopy{.bufferOffset = vk::DeviceSize(eye) * w * 4,
                                       .bufferRowLength = 2 * w,
                                       .bufferImageHeight = h,
                                       .imageSubresource = {.aspectMask = vk::ImageAspectFlagBits::eColor,
                                                            .baseArrayLayer = eye,
                                                            .layerCount = 1},
                                       .imageExtent = {w, h, 1}};
  cmd.copyImageToBuffer(*s.color.image, vk::ImageLayout::eTransferSrcOptimal, *s.rgba.buffer, regions);
}

StereoRenderer::StereoRenderer(std::shared_ptr<GpuScene> scene, const RendererConfig& config)
    : impl_(std::make_unique<Impl>(std::move(scene), config)) {
  const RendererConfig& c = impl_->config;
  if (c.eye_width <= 0 || c.eye_height <= 0 || c.eye_width > 8192 || c.eye_height > 8192)
    throw_invalid_input("eye size must be between 1x1 and 8192x8192, got " + std::to_string(c.eye_width) +
                        "x" + std::to_string(c.eye_height));
  if (c.nv12 != Nv12Layout::kNone && (c.eye_width % 4 != 0 || c.eye_height % 2 != 0))
    throw_invalid_input("NV12 output needs an eye width divisible by 4 and an even eye height, got " +
                        std::to_string(c.eye_width) + "x" + std::to_string(c.eye_height));
  if (c.frames_in_flight < 1 || c.frames_in_flight > 8)
    throw_invalid_input("frames in flight must be 1 to 8");
  if (!(c.near_plane > 0.0f)) throw_invalid_input("near plane must be positive");
  try {
    impl_->multiview =
        c.multiview == MultiviewMode::kOn ||
        (c.multiview == MultiviewMode::kAuto && multiview_is_reliable(impl_->scene->impl().context));
    impl_->create_pipelines();
    impl_->create_slots();
  } catch (const vk::Error& e) {
    throw_runtime(std::string("cannot create the stereo renderer: ") + e.what());
  }
}

StereoRenderer::~StereoRenderer() {
  // Slots still on the device must finish before their memory goes.
  for (Slot& s : impl_->slots)
    if (s.state == SlotState::kInFlight)
      (void)impl_->vk_ctx.device.waitForFences(*s.fence, VK_TRUE, kFenceTimeoutNs);
}

void StereoRenderer::submit(const FrameRequest& request) {
  Impl& d = *impl_;
  Slot* slot = nullptr;
  int index = 0;
  for (; index < int(d.slots.size()); ++index)
    if (d.slots[index].state == SlotState::kFree) {
      slot = &d.slots[index];
      break;
    }
  if (slot == nullptr)
    throw std::logic_error("StereoRenderer::submit: no free frame slot (collect and release first)");
  for (const EyeView& eye : request.view) {
    (void)validated_pose(eye.pose);
    (void)validated_fov(eye.fov);
  }
  const int w = d.config.eye_width, h = d.config.eye_height;
  const int cw = request.coded_width > 0 ? request.coded_width : w;
  const int ch = request.coded_height > 0 ? request.coded_height : h;
  if (cw > w || ch > h || cw < 16 || ch < 16 || ((cw != w || ch != h) && (cw % 8 != 0 || ch % 8 != 0)))
    throw_invalid_input("coded eye size " + std::to_string(cw) + "x" + std::to_string(ch) +
                        " must be multiples of 8 between 16 and the rendered size");
  if (!(request.foveation.strength >= 0 && request.foveation.strength <= 1))
    throw_invalid_input("foveation strength must be 0 to 1");
  if (request.dynamic_draws.size() > kMaxDynamicDraws)
    throw_invalid_input("at most " + std::to_string(kMaxDynamicDraws) + " dynamic draws per frame");
  for (const DynamicDraw& draw : request.dynamic_draws)
    for (int c = 0; c < 16; ++c)
      if (!std::isfinite(draw.model[c / 4][c % 4]))
        throw_invalid_input("a dynamic draw's transform is not finite");
  d.record(*slot, request);
  // The NV12 views of this frame: tightly packed at the coded size.
  const auto* nv12_base = static_cast<const uint8_t*>(slot->nv12.mapped);
  if (d.config.nv12 == Nv12Layout::kSideBySide) {
    slot->frame.nv12[0] = Nv12Picture{.y = {nv12_base, size_t(2 * cw) * ch},
                                      .uv = {nv12_base + size_t(2 * cw) * ch, size_t(2 * cw) * ch / 2},
                                      .width = 2 * cw,
                                      .height = ch};
  } else if (d.config.nv12 == Nv12Layout::kPerEye) {
    for (int eye = 0; eye < 2; ++eye) {
      const uint8_t* base = nv12_base + eye * d.nv12_picture_bytes;
      slot->frame.nv12[eye] = Nv12Picture{.y = {base, size_t(cw) * ch},
                                          .uv = {base + size_t(cw) * ch, size_t(cw) * ch / 2},
                                          .width = cw,
                                          .height = ch};
    }
  }
  // Frames written into an external target have no NV12 in the slot's memory to hand out.
  const int own_pictures = d.config.nv12 == Nv12Layout::kSideBySide ? 1
                           : d.config.nv12 == Nv12Layout::kPerEye   ? 2
                                                                    : 0;
  slot->frame.nv12_pictures = request.nv12_target ? 0 : own_pictures;
  slot->rgba_requested = request.want_rgba;
  slot->frame.frame_id = request.frame_id;
  slot->frame.view = request.view;
  slot->frame.submitted_ns = steady_now_ns();
  d.vk_ctx.device.resetFences(*slot->fence);
  const vk::CommandBuffer handle = *slot->cmd;
  {
    std::lock_guard lock(d.vk_ctx.queue_mutex);
    d.vk_ctx.queue.submit(vk::SubmitInfo{.commandBufferCount = 1, .pCommandBuffers = &handle}, *slot->fence);
  }
  slot->state = SlotState::kInFlight;
  d.order[(d.order_head + d.order_count) % d.order.size()] = index;
  ++d.order_count;
}

const RenderedFrame& StereoRenderer::collect() {
  Impl& d = *impl_;
  if (d.order_count == 0) throw std::logic_error("StereoRenderer::collect: no frame in flight");
  Slot& s = d.slots[d.order[d.order_head]];
  if (d.vk_ctx.device.waitForFences(*s.fence, VK_TRUE, kFenceTimeoutNs) != vk::Result::eSuccess)
    throw_runtime("the Vulkan device did not finish a frame within 20 s");
  d.order_head = (d.order_head + 1) % d.order.size();
  --d.order_count;
  s.state = SlotState::kCollected;
  s.frame.completed_ns = steady_now_ns();
  const uint32_t w = uint32_t(d.config.eye_width), h = uint32_t(d.config.eye_height);
  s.frame.rgba = s.rgba_requested ? std::span<const uint8_t>(static_cast<const uint8_t*>(s.rgba.mapped),
                                                             size_t(2 * w) * h * 4)
                                  : std::span<const uint8_t>();
  if (d.vk_ctx.timestamps) {
    std::array<uint64_t, 3> ticks{};
    const vk::Result result = (*d.vk_ctx.device)
                                  .getQueryPoolResults(*s.queries, 0, 3, sizeof(ticks), ticks.data(),
                                                       sizeof(uint64_t), vk::QueryResultFlagBits::e64);
    if (result == vk::Result::eSuccess) {
      const double period_ms = d.vk_ctx.timestamp_period_ns * 1e-6;
      s.frame.gpu_render_ms = double(ticks[1] - ticks[0]) * period_ms;
      s.frame.gpu_convert_ms = double(ticks[2] - ticks[1]) * period_ms;
    }
  }
  return s.frame;
}

void StereoRenderer::release(const RenderedFrame& frame) {
  for (Slot& s : impl_->slots)
    if (&s.frame == &frame) {
      if (s.state != SlotState::kCollected)
        throw std::logic_error("StereoRenderer::release: frame was not collected");
      s.state = SlotState::kFree;
      return;
    }
  throw std::logic_error("StereoRenderer::release: frame does not belong to this renderer");
}

int StereoRenderer::free_slots() const {
  int n = 0;
  for (const Slot& s : impl_->slots) n += s.state == SlotState::kFree;
  return n;
}
int StereoRenderer::in_flight() const {
  return int(impl_->order_count);
}
const RendererConfig& StereoRenderer::config() const {
  return impl_->config;
}
bool StereoRenderer::uses_multiview() const {
  return impl_->multiview;
}

bool stereo_clipping_correct(const std::shared_ptr<VulkanContext>& context, MultiviewMode mode) {
  bool correct = false;
  {
    // A 200 m floor under eyes 1 m apart, looking down 45 degrees: every floor triangle is clipped.
    SceneData floor;
    floor.name = "multiview probe";
    const glm::vec3 up(0, 1, 0);
    for (glm::vec2 c :
         {glm::vec2(-100, -100), glm::vec2(100, -100), glm::vec2(100, 100), glm::vec2(-100, 100)})
      floor.vertices.push_back(
          Vertex{.position = {c.x, 0, c.y}, .normal = up, .uv = {0, 0}, .tangent = {0, 0, 0, 0}});
    floor.indices = {0, 2, 1, 0, 3, 2};
    floor.materials.push_back(
        MaterialData{.name = "probe", .base_color_factor = {0, 0, 0, 1}, .emissive_factor = {1, 1, 1}});
    floor.meshes.push_back(MeshData{.first_index = 0, .index_count = 6, .vertex_offset = 0, .material = 0});
    floor.draws.push_back(DrawData{.mesh = 0, .transform = glm::mat4(1.0f)});
    StereoRenderer probe(GpuScene::upload(context, floor), RendererConfig{.eye_width = 16,
                                                                          .eye_height = 16,
                                                                          .frames_in_flight = 1,
                                                                          .nv12 = Nv12Layout::kNone,
                                                                          .multiview = mode});
    // Left eye level (sees the floor in its lower half only); right eye pitched down 60 degrees (floor
    // everywhere).
    StereoView view;
    view[0] = EyeView{.pose = {.position = {0, 1, 0}}, .fov = symmetric_fov(90)};
    view[1] = EyeView{.pose = {.position = {1, 1, 0},
                               .orientation = glm::angleAxis(glm::radians(-60.0f), glm::vec3(1, 0, 0))},
                      .fov = symmetric_fov(90)};
    probe.submit(FrameRequest{.frame_id = 0, .view = view, .want_rgba = true});
    const RenderedFrame& frame = probe.collect();
    auto white = [&](int x, int y) { return frame.rgba[(size_t(y) * 32 + size_t(x)) * 4 + 1] > 240; };
    // Left eye: top row must be sky; right eye: top row must be floor.
    correct = !white(8, 1) && white(16 + 8, 1) && white(8, 14) && white(16 + 8, 14);
    probe.release(frame);
  }
  return correct;
}

bool multiview_is_reliable(const std::shared_ptr<VulkanContext>& context) {
  VulkanContext::Impl& vk_ctx = context->impl();
  std::call_once(vk_ctx.multiview_probe_once, [&] {
    vk_ctx.multiview_reliable = stereo_clipping_correct(context, MultiviewMode::kOn);
    if (!vk_ctx.multiview_reliable)
      spdlog::warn(
          "multiview on {} misplaces clipped triangles (a known lavapipe 22.x bug): rendering the eyes in "
          "two passes instead",
          vk_ctx.info.name);
  });
  return vk_ctx.multiview_reliable;
}

}  // namespace kairo
