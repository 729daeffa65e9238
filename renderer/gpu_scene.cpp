#include <spdlog/spdlog.h>
#include <algorithm>
#include <bit>
#include <cstring>

#include "core/error.hpp"
#include "renderer/dynamic_draw.hpp"
#include "renderer/gpu_scene_impl.hpp"

namespace kairo {
namespace {

// The unit cube every scene carries for DynamicDraw: 4 vertices per face for flat normals.
struct UnitCube {
  std::array<Vertex, 24> vertices{};
  std::array<uint32_t, 36> indices{};
};

UnitCube unit_cube() {
  UnitCube cube;
  const std::array<glm::vec3, 6> normals{glm::vec3(1, 0, 0),  glm::vec3(-1, 0, 0), glm::vec3(0, 1, 0),
                                         glm::vec3(0, -1, 0), glm::vec3(0, 0, 1),  glm::vec3(0, 0, -1)};
  for (size_t face = 0; face < normals.size(); ++face) {
    const glm::vec3 n = normals[face];
    // Two axes spanning the face, ordered so that (u x v) = n: counter-clockwise seen from outside.
    const glm::vec3 u = std::abs(n.y) > 0.5f ? glm::vec3(n.y, 0, 0) : glm::vec3(-n.z, 0, n.x);
    const glm::vec3 v = glm::cross(n, u);
    const std::array<glm::vec2, 4> corners{glm::vec2(-1, -1), glm::vec2(1, -1), glm::vec2(1, 1),
                                           glm::vec2(-1, 1)};
    for (size_t c = 0; c < 4; ++c)
      cube.vertices[face * 4 + c] = Vertex{.position = 0.5f * (n + corners[c].x * u + corners[c].y * v),
                                           .normal = n,
                                           .uv = (corners[c] + 1.0f) * 0.5f,
                                           .tangent = glm::vec4(0.0f)};
    const uint32_t base = uint32_t(face * 4);
    const std::array<uint32_t, 6> quad{base, base + 1, base + 2, base, base + 2, base + 3};
    std::copy(quad.begin(), quad.end(), cube.indices.begin() + std::ptrdiff_t(face * 6));
  }
  return cube;
}

MaterialData builtin_material(uint32_t index) {
  return MaterialData{.name = "builtin " + std::to_string(index),
                      .base_color_factor = glm::vec4(0, 0, 0, 1),
                      .emissive_factor = builtin_material_colour(BuiltinMaterial(index)),
                      .metallic = 0.0f,
                      .roughness = 1.0f};
}

// std140 layout of MaterialUniforms in shaders/scene.frag.
struct MaterialUniforms {
  glm::vec4 base_color_factor;
  glm::vec4 emissive_factor;
  glm::vec4 params;
  glm::vec4 alpha;
};

uint32_t mip_count(int width, int height) {
  return static_cast<uint32_t>(std::bit_width(static_cast<unsigned>(std::max(width, height))));
}

void transition(vk::CommandBuffer cmd, vk::Image image, vk::ImageLayout from, vk::ImageLayout to,
                uint32_t base_mip, uint32_t mip_levels, vk::PipelineStageFlags2 src_stage,
                vk::AccessFlags2 src_access, vk::PipelineStageFlags2 dst_stage, vk::AccessFlags2 dst_access) {
  transition_image(cmd, image,
                   {.aspectMask = vk::ImageAspectFlagBits::eColor,
                    .baseMipLevel = base_mip,
                    .levelCount = mip_levels,
                    .layerCount = 1},
                   ImageTransition{.from = from,
                                   .to = to,
                                   .src_stage = src_stage,
                                   .dst_stage = dst_stage,
                                   .src_access = src_access,
                                   .dst_access = dst_access});
}

}  // namespace

glm::vec3 builtin_material_colour(BuiltinMaterial material) {
  // Saturated hues far from each other and from the project scenes' materials (tests find them by hue).
  static constexpr std::array<glm::vec3, kBuiltinMaterials> colours{
      glm::vec3(1.0f, 0.0f, 1.0f), glm::vec3(0.0f, 1.0f, 1.0f), glm::vec3(1.0f, 0.85f, 0.0f),
      glm::vec3(1.0f, 0.3f, 0.0f), glm::vec3(0.1f, 0.2f, 1.0f), glm::vec3(1.0f, 0.05f, 0.05f),
      glm::vec3(0.4f, 1.0f, 0.0f), glm::vec3(1.0f, 0.4f, 0.6f), glm::vec3(0.02f, 0.02f, 0.02f),
      glm::vec3(0.0f, 1.0f, 0.45f)};
  return colours[std::min<size_t>(size_t(material), colours.size() - 1)];
}

GpuScene::GpuScene(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpuScene::~GpuScene() = default;
const std::string& GpuScene::name() const {
  return impl_->name;
}
size_t GpuScene::draw_count() const {
  return impl_->draws.size();
}
size_t GpuScene::triangle_count() const {
  return impl_->triangles;
}
VulkanContext& GpuScene::context() const {
  return *impl_->context;
}

namespace {

// The scene's textures and three 1x1 defaults for missing maps: white sRGB, white linear, flat normal.
struct TextureSet {
  std::vector<TextureData> textures;
  int white_srgb = 0, white_linear = 0, flat_normal = 0;
};

TextureSet textures_with_defaults(const SceneData& scene) {
  TextureSet set{.textures = scene.textures};
  set.white_srgb = int(set.textures.size());
  set.white_linear = set.white_srgb + 1;
  set.flat_normal = set.white_srgb + 2;
  set.textures.push_back(TextureData{
      .name = "default white srgb", .width = 1, .height = 1, .srgb = true, .rgba = {255, 255, 255, 255}});
  set.textures.push_back(TextureData{
      .name = "default white", .width = 1, .height = 1, .srgb = false, .rgba = {255, 255, 255, 255}});
  set.textures.push_back(TextureData{
      .name = "default normal", .width = 1, .height = 1, .srgb = false, .rgba = {128, 128, 255, 255}});
  return set;
}

// One host-visible staging buffer: the scene's geometry, then the built-in cube's, then every texture
// (16-byte aligned), copied to the device in one submission.
struct Staging {
  Buffer buffer;
  vk::DeviceSize vertex_bytes = 0, index_bytes = 0, total = 0;
  std::vector<vk::DeviceSize> texture_offsets;
};

// Bytes of a texture on the device: its pixels and its mip chain (a third more).
uint64_t texture_device_bytes(const TextureData& t) {
  return uint64_t(t.width) * uint64_t(t.height) * 4 * 4 / 3;
}

Staging stage_scene(VulkanContext::Impl& vk_ctx, const SceneData& scene, const UnitCube& cube,
                    const std::vector<TextureData>& textures) {
  Staging st;
  const vk::DeviceSize scene_vertex_bytes = scene.vertices.size() * sizeof(Vertex);
  const vk::DeviceSize scene_index_bytes = scene.indices.size() * sizeof(uint32_t);
  st.vertex_bytes = scene_vertex_bytes + sizeof(cube.vertices);
  st.index_bytes = scene_index_bytes + sizeof(cube.indices);
  st.total = st.vertex_bytes + st.index_bytes;
  for (const TextureData& t : textures) {
    st.total = (st.total + 15) & ~vk::DeviceSize(15);
    st.texture_offsets.push_back(st.total);
    st.total += t.rgba.size();
  }
  st.buffer = vk_ctx.create_buffer(st.total, vk::BufferUsageFlagBits::eTransferSrc, true, "scene staging");
  auto* bytes = static_cast<uint8_t*>(st.buffer.mapped);
  std::memcpy(bytes, scene.vertices.data(), scene_vertex_bytes);
  std::memcpy(bytes + scene_vertex_bytes, cube.vertices.data(), sizeof(cube.vertices));
  std::memcpy(bytes + st.vertex_bytes, scene.indices.data(), scene_index_bytes);
  std::memcpy(bytes + st.vertex_bytes + scene_index_bytes, cube.indices.data(), sizeof(cube.indices));
  for (size_t i = 0; i < textures.size(); ++i)
    std::memcpy(bytes + st.texture_offsets[i], textures[i].rgba.data(), textures[i].rgba.size());
  return st;
}

// Device images for the textures, with a full mip chain where the format can be blitted with linear
// filtering (else a single level).
void create_texture_images(VulkanContext::Impl& vk_ctx, const std::vector<TextureData>& textures,
                           std::vector<Image>& out) {
  auto can_blit = [&](vk::Format format) {
    const auto features = vk_ctx.physical_device.getFormatProperties(format).optimalTilingFeatures;
    return (features & vk::FormatFeatureFlagBits::eBlitSrc) &&
           (features & vk::FormatFeatureFlagBits::eBlitDst) &&
           (features & vk::FormatFeatureFlagBits::eSampledImageFilterLinear);
  };
  for (const TextureData& t : textures) {
    const vk::Format format = t.srgb ? vk::Format::eR8G8B8A8Srgb : vk::Format::eR8G8B8A8Unorm;
    const uint32_t mips = can_blit(format) ? mip_count(t.width, t.height) : 1;
    out.push_back(vk_ctx.create_image(format, vk::Extent3D{uint32_t(t.width), uint32_t(t.height), 1}, mips, 1,
                                      vk::ImageUsageFlagBits::eSampled |
                                          vk::ImageUsageFlagBits::eTransferDst |
                                          vk::ImageUsageFlagBits::eTransferSrc,
                                      vk::ImageAspectFlagBits::eColor, t.name.c_str()));
  }
}

// Level 0 arrives by copy (TRANSFER_DST); each next level is blitted from the one above, which then becomes
// shader-readable; the last level is made shader-readable at the end.
void upload_texture(vk::CommandBuffer cmd, vk::Buffer staging, vk::DeviceSize offset, const Image& image) {
  const vk::Image handle = *image.image;
  transition(cmd, handle, vk::ImageLayout::eUndefined, vk::ImageLayout::eTransferDstOptimal, 0,
             image.mip_levels, vk::PipelineStageFlagBits2::eNone, {}, vk::PipelineStageFlagBits2::eTransfer,
             vk::AccessFlagBits2::eTransferWrite);
  cmd.copyBufferToImage(
      staging, handle, vk::ImageLayout::eTransferDstOptimal,
      vk::BufferImageCopy{
          .bufferOffset = offset,
          .imageSubresource = {.aspectMask = vk::ImageAspectFlagBits::eColor, .layerCount = 1},
          .imageExtent = image.extent});
  int32_t w = int32_t(image.extent.width), h = int32_t(image.extent.height);
  for (uint32_t level = 1; level < image.mip_levels; ++level) {
    transition(cmd, handle, vk::ImageLayout::eTransferDstOptimal, vk::ImageLayout::eTransferSrcOptimal,
               level - 1, 1, vk::PipelineStageFlagBits2::eTransfer, vk::AccessFlagBits2::eTransferWrite,
               vk::PipelineStageFlagBits2::eTransfer, vk::AccessFlagBits2::eTransferRead);
    const int32_t next_w = std::max(1, w / 2), next_h = std::max(1, h / 2);
    const vk::ImageBlit blit{
        .srcSubresource = {.aspectMask = vk::ImageAspectFlagBits::eColor,
                           .mipLevel = level - 1,
                           .layerCount = 1},
        .srcOffsets = std::array<vk::Offset3D, 2>{vk::Offset3D{0, 0, 0}, vk::Offset3D{w, h, 1}},
        .dstSubresource = {.aspectMask = vk::ImageAspectFlagBits::eColor, .mipLevel = level, .layerCount = 1},
        .dstOffsets = std::array<vk::Offset3D, 2>{vk::Offset3D{0, 0, 0}, vk::Offset3D{next_w, next_h, 1}}};
    cmd.blitImage(handle, vk::ImageLayout::eTransferSrcOptimal, handle, vk::ImageLayout::eTransferDstOptimal,
                  blit, vk::Filter::eLinear);
    transition(cmd, handle, vk::ImageLayout::eTransferSrcOptimal, vk::ImageLayout::eShaderReadOnlyOptimal,
               level - 1, 1, vk::PipelineStageFlagBits2::eTransfer, vk::AccessFlagBits2::eTransferRead,
               vk::PipelineStageFlagBits2::eFragmentShader, vk::AccessFlagBits2::eShaderSampledRead);
    w = next_w;
    h = next_h;
  }
  transition(cmd, handle, vk::ImageLayout::eTransferDstOptimal, vk::ImageLayout::eShaderReadOnlyOptimal,
             image.mip_levels - 1, 1, vk::PipelineStageFlagBits2::eTransfer,
             vk::AccessFlagBits2::eTransferWrite, vk::PipelineStageFlagBits2::eFragmentShader,
             vk::AccessFlagBits2::eShaderSampledRead);
}

// Materials (the scene's, then the built-in ones): a uniform block each, aligned so no dynamic offsets are
// needed, and a descriptor set each with its five texture slots (defaults where the material has none).
void create_materials(GpuScene::Impl& g, VulkanContext::Impl& vk_ctx, const SceneData& scene,
                      const TextureSet& set) {
  const vk::raii::Device& device = vk_ctx.device;
  const vk::DeviceSize alignment =
      vk_ctx.physical_device.getProperties().limits.minUniformBufferOffsetAlignment;
  const vk::DeviceSize stride = (sizeof(MaterialUniforms) + alignment - 1) / alignment * alignment;
  const size_t material_count = scene.materials.size() + kBuiltinMaterials;
  g.material_uniforms = vk_ctx.create_buffer(stride * material_count, vk::BufferUsageFlagBits::eUniformBuffer,
                                             true, "material uniforms");

  std::array<vk::DescriptorSetLayoutBinding, 1 + kTextureSlots> bindings{};
  bindings[0] = {.binding = 0,
                 .descriptorType = vk::DescriptorType::eUniformBuffer,
                 .descriptorCount = 1,
                 .stageFlags = vk::ShaderStageFlagBits::eFragment};
  for (uint32_t i = 1; i <= kTextureSlots; ++i)
    bindings[i] = {.binding = i,
                   .descriptorType = vk::DescriptorType::eCombinedImageSampler,
                   .descriptorCount = 1,
                   .stageFlags = vk::ShaderStageFlagBits::eFragment};
  g.material_layout = vk::raii::DescriptorSetLayout(
      device, vk::DescriptorSetLayoutCreateInfo{.bindingCount = uint32_t(bindings.size()),
                                                .pBindings = bindings.data()});
  const std::array<vk::DescriptorPoolSize, 2> pool_sizes{
      vk::DescriptorPoolSize{.type = vk::DescriptorType::eUniformBuffer,
                             .descriptorCount = uint32_t(material_count)},
      vk::DescriptorPoolSize{.type = vk::DescriptorType::eCombinedImageSampler,
                             .descriptorCount = uint32_t(material_count * kTextureSlots)}};
  g.descriptor_pool = vk::raii::DescriptorPool(
      device, vk::DescriptorPoolCreateInfo{.flags = vk::DescriptorPoolCreateFlagBits::eFreeDescriptorSet,
                                           .maxSets = uint32_t(material_count),
                                           .poolSizeCount = uint32_t(pool_sizes.size()),
                                           .pPoolSizes = pool_sizes.data()});
  std::vector<vk::DescriptorSetLayout> layouts(material_count, *g.material_layout);
  g.material_sets = vk::raii::DescriptorSets(
      device, vk::DescriptorSetAllocateInfo{.descriptorPool = *g.descriptor_pool,
                                            .descriptorSetCount = uint32_t(material_count),
                                            .pSetLayouts = layouts.data()});

  const int defaults[kTextureSlots] = {set.white_srgb, set.flat_normal, set.white_linear, set.white_linear,
                                       set.white_srgb};
  g.builtin_material_base = uint32_t(scene.materials.size());
  for (size_t m = 0; m < material_count; ++m) {
    const MaterialData material = m < scene.materials.size()
                                      ? scene.materials[m]
                                      : builtin_material(uint32_t(m - scene.materials.size()));
    MaterialUniforms uniforms{
        .base_color_factor = material.base_color_factor,
        .emissive_factor = glm::vec4(material.emissive_factor, 0.0f),
        .params = glm::vec4(material.metallic, material.roughness, material.normal_scale,
                            material.occlusion_strength),
        .alpha = glm::vec4(material.alpha_mask ? material.alpha_cutoff : -1.0f, 0.0f, 0.0f, 0.0f)};
    std::memcpy(static_cast<uint8_t*>(g.material_uniforms.mapped) + m * stride, &uniforms, sizeof(uniforms));

    const vk::DescriptorBufferInfo buffer_info{
        .buffer = *g.material_uniforms.buffer, .offset = m * stride, .range = sizeof(MaterialUniforms)};
    std::array<vk::DescriptorImageInfo, kTextureSlots> image_infos{};
    std::array<vk::WriteDescriptorSet, 1 + kTextureSlots> writes{};
    writes[0] = {.dstSet = *g.material_sets[m],
                 .dstBinding = 0,
                 .descriptorCount = 1,
                 .descriptorType = vk::DescriptorType::eUniformBuffer,
                 .pBufferInfo = &buffer_info};
    uint8_t maps = 0;
    for (int slot = 0; slot < kTextureSlots; ++slot)
      if (material.textures[slot] >= 0) maps |= uint8_t(1u << slot);
    g.material_maps.push_back(maps);
    for (int slot = 0; slot < kTextureSlots; ++slot) {
      const int texture = material.textures[slot] >= 0 ? material.textures[slot] : defaults[slot];
      image_infos[slot] = {.sampler = *g.sampler,
                           .imageView = *g.textures[texture].view,
                           .imageLayout = vk::ImageLayout::eShaderReadOnlyOptimal};
      writes[slot + 1] = {.dstSet = *g.material_sets[m],
                          .dstBinding = uint32_t(slot + 1),
                          .descriptorCount = 1,
                          .descriptorType = vk::DescriptorType::eCombinedImageSampler,
                          .pImageInfo = &image_infos[slot]};
    }
    device.updateDescriptorSets(writes, {});
  }
}

// The scene's draws (sorted by material: fewer rebinds) and the built-in cube's, for dynamic draws.
void build_draws(GpuScene::Impl& g, const SceneData& scene, const UnitCube& cube) {
  for (const DrawData& d : scene.draws) {
    const MeshData& mesh = scene.meshes[d.mesh];
    GpuDraw& draw = g.draws.emplace_back(
        GpuDraw{.model = d.transform,
                .normal_matrix = glm::mat4(glm::transpose(glm::inverse(glm::mat3(d.transform)))),
                .vertex_offset = mesh.vertex_offset,
                .material = mesh.material});
    // A draw's errors and bounds scale with its largest axis scale (errors are distances).
    const glm::mat3 linear(d.transform);
    const float scale = std::max({glm::length(linear[0]), glm::length(linear[1]), glm::length(linear[2])});
    draw.lods[0] = MeshLod{.first_index = mesh.first_index, .index_count = mesh.index_count, .error = 0.0f};
    draw.lod_count = std::clamp(mesh.lod_count, 1u, uint32_t(kMaxLods));
    for (uint32_t level = 1; level < draw.lod_count; ++level) {
      draw.lods[level] = mesh.lods[level];
      draw.world_errors[level] = mesh.lods[level].error * scale;
    }
    draw.world_center = glm::vec3(d.transform * glm::vec4(mesh.center, 1.0f));
    draw.world_radius = mesh.radius * scale;
  }
  g.unit_cube = GpuDraw{.model = glm::mat4(1.0f),
                        .normal_matrix = glm::mat4(1.0f),
                        .vertex_offset = int32_t(scene.vertices.size()),
                        .material = g.builtin_material_base};
  g.unit_cube.lods[0] = MeshLod{.first_index = uint32_t(scene.indices.size()),
                                .index_count = uint32_t(cube.indices.size()),
                                .error = 0.0f};
  std::stable_sort(g.draws.begin(), g.draws.end(),
                   [](const GpuDraw& a, const GpuDraw& b) { return a.material < b.material; });
}

}  // namespace

uint64_t GpuScene::device_bytes(const SceneData& scene) {
  uint64_t bytes = scene.vertices.size() * sizeof(Vertex) + scene.indices.size() * sizeof(uint32_t);
  for (const TextureData& t : scene.textures) bytes += texture_device_bytes(t);
  return bytes;
}

std::shared_ptr<GpuScene> GpuScene::upload(std::shared_ptr<VulkanContext> context, const SceneData& scene) {
  auto impl = std::make_unique<Impl>();
  impl->context = context;
  impl->name = scene.name;
  impl->triangles = scene.triangle_count();
  VulkanContext::Impl& vk_ctx = context->impl();

  const TextureSet set = textures_with_defaults(scene);
  const UnitCube cube = unit_cube();
  const Staging staging = stage_scene(vk_ctx, scene, cube, set.textures);
  impl->vertices = vk_ctx.create_buffer(
      staging.vertex_bytes, vk::BufferUsageFlagBits::eVertexBuffer | vk::BufferUsageFlagBits::eTransferDst,
      false, "scene vertices");
  impl->indices = vk_ctx.create_buffer(
      staging.index_bytes, vk::BufferUsageFlagBits::eIndexBuffer | vk::BufferUsageFlagBits::eTransferDst,
      false, "scene indices");
  create_texture_images(vk_ctx, set.textures, impl->textures);
  vk_ctx.run_once([&](vk::CommandBuffer cmd) {
    cmd.copyBuffer(*staging.buffer.buffer, *impl->vertices.buffer,
                   vk::BufferCopy{.srcOffset = 0, .dstOffset = 0, .size = staging.vertex_bytes});
    cmd.copyBuffer(
        *staging.buffer.buffer, *impl->indices.buffer,
        vk::BufferCopy{.srcOffset = staging.vertex_bytes, .dstOffset = 0, .size = staging.index_bytes});
    for (size_t i = 0; i < set.textures.size(); ++i)
      upload_texture(cmd, *staging.buffer.buffer, staging.texture_offsets[i], impl->textures[i]);
  });
  // Trilinear on a GPU. On a CPU device (lavapipe) blending two mip levels doubles every texture fetch, and
  // the fetches were most of a frame (2x1024^2 vr-room: 61 ms, 45 from the nearest level); the golden images
  // hold within their 40 dB either way.
  const bool cpu_device = vk_ctx.info.type == "cpu";
  impl->sampler = vk::raii::Sampler(
      vk_ctx.device, vk::SamplerCreateInfo{.magFilter = vk::Filter::eLinear,
                                           .minFilter = vk::Filter::eLinear,
                                           .mipmapMode = cpu_device ? vk::SamplerMipmapMode::eNearest
                                                                    : vk::SamplerMipmapMode::eLinear,
                                           .addressModeU = vk::SamplerAddressMode::eRepeat,
                                           .addressModeV = vk::SamplerAddressMode::eRepeat,
                                           .addressModeW = vk::SamplerAddressMode::eRepeat,
                                           .maxLod = VK_LOD_CLAMP_NONE});
  create_materials(*impl, vk_ctx, scene, set);
  build_draws(*impl, scene, cube);
  spdlog::debug("uploaded scene {}: {} MiB", scene.name, staging.total >> 20);
  return std::shared_ptr<GpuScene>(new GpuScene(std::move(impl)));
}

}  // namespace kairo
