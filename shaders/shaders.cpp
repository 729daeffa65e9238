#include "shaders/shaders.hpp"

#include "spirv/nv12_comp.h"
#include "spirv/scene_frag.h"
#include "spirv/scene_vert.h"

namespace kairo::shaders {

std::span<const uint32_t> scene_vert() {
  return kairo_spirv_scene_vert;
}
std::span<const uint32_t> scene_frag() {
  return kairo_spirv_scene_frag;
}
std::span<const uint32_t> nv12_comp() {
  return kairo_spirv_nv12_comp;
}

}  // namespace kairo::shaders
