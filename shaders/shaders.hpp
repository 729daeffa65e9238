#pragma once
// The project's shaders, compiled to SPIR-V at build time and linked into the binary.
#include <cstdint>
#include <span>

namespace kairo::shaders {

std::span<const uint32_t> scene_vert();
std::span<const uint32_t> scene_frag();
std::span<const uint32_t> nv12_comp();

}  // namespace kairo::shaders
