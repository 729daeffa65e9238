#pragma once
// An uploaded scene loaded by `kairo scene inspect` in a child process under resource limits, never in the
// control plane itself: assimp parses hostile files and has known memory-safety bugs (docs/security.md), so a
// crash, a runaway allocation or a hang costs that child only. The child gets an address-space cap, a
// CPU-time cap, no file it may grow past 1 MiB, a handful of descriptors, and is killed at the wall-clock
// deadline.
#include <cstdint>
#include <string>

namespace kairo::control {

struct SceneStats {
  uint64_t triangles = 0;      // as drawn (instances counted)
  uint64_t texture_bytes = 0;  // decoded RGBA, as uploaded to a device
  int textures = 0;
  int draws = 0;
};

struct InspectionLimits {
  std::string inspector;  // the kairo binary (its `scene inspect` subcommand)
  double timeout_s = 60;
  uint64_t memory_bytes = 4ull << 30;
};

// Throws ApiError 400 invalid_scene with the loader's reason when the file does not load, and kairo::Error
// (runtime) when the inspector itself cannot be run.
SceneStats inspect_scene_in_sandbox(const std::string& glb, const InspectionLimits& limits);

}  // namespace kairo::control
