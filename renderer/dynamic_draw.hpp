#pragma once
// Things that move from frame to frame while the scene stays put: the avatars of a room's other users and
// the objects they share. Every GpuScene carries a unit cube and a few flat, self-lit materials for them
// (appended at upload), so a frame draws them with push constants only: no per-frame uploads or
// allocation, whatever scene is loaded.
#include <cstdint>
#include <glm/glm.hpp>

namespace kairo {

enum class BuiltinMaterial : uint32_t {
  kAvatar0 = 0,  // kAvatar0 + slot, for slot < kAvatarColours: one colour per member of a room
  kVisor = 8,    // the dark face plate that shows where an avatar looks
  kSharedObject = 9,
};
constexpr uint32_t kAvatarColours = 8;
constexpr uint32_t kBuiltinMaterials = 10;

// Linear RGB the material emits (its base colour is black: what it shows does not depend on the lights).
glm::vec3 builtin_material_colour(BuiltinMaterial material);
inline BuiltinMaterial avatar_material(uint32_t slot) {
  return BuiltinMaterial(slot % kAvatarColours);
}

// The unit cube (-0.5..0.5 on each axis) drawn with `model` (scale, rotation, translation).
struct DynamicDraw {
  glm::mat4 model{1.0f};
  BuiltinMaterial material = BuiltinMaterial::kSharedObject;
};

}  // namespace kairo
