#pragma once
// The scene catalogue (#16, docs/scenes.md "Catalogue"): operators upload scenes under a name; each upload
// is checked (a complete GLB whose bytes match the SHA-256 it was sent with, that loads — in a sandboxed
// child, control-plane/scene_inspection.hpp — and fits the budget), stored content-addressed in PostgreSQL in
// 1 MiB chunks, and becomes the name's next version. Sessions on a catalogue scene render the newest version
// at their creation; nodes fetch its bytes by hash. A refused upload leaves nothing behind; a scene that live
// sessions use cannot be deleted.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control-plane/database.hpp"
#include "control-plane/scene_inspection.hpp"
#include "core/content_hash.hpp"

namespace kairo::v1 {
class SceneVersion;
}

namespace kairo::control {

struct PageRequest;

// What one scene may cost. Checked at upload; every item exceeded is named in the refusal.
struct SceneBudget {
  uint64_t max_file_bytes = 256ull << 20;
  uint64_t max_triangles = 4'000'000;
  uint64_t max_texture_bytes = 1ull << 30;  // decoded RGBA
  int max_draws = 20'000;
};

struct CatalogueOptions {
  SceneBudget budget{};
  InspectionLimits inspection{};
};

class SceneCatalogue {
 public:
  SceneCatalogue(Database& db, CatalogueOptions options);

  // Throws ApiError: 413 scene_too_large, 400 hash_mismatch / invalid_scene / over_budget.
  v1::SceneVersion upload(const std::string& name, const std::string& glb,
                          const std::optional<std::string>& expected_sha256, int64_t user_id);
  // Every version of every scene, by name then version.
  std::vector<v1::SceneVersion> list(const PageRequest& page, std::string& next_cursor);
  // Every version of the name. Throws ApiError 404, or 409 scene_in_use naming the live sessions that use it.
  void remove(const std::string& name);
  // The stored bytes, or nullopt.
  std::optional<std::string> blob(const std::string& sha256);

  uint64_t max_upload_bytes() const { return options_.budget.max_file_bytes; }

 private:
  Database& db_;
  CatalogueOptions options_;
};

// Why the bytes are not one complete GLB 2.0 container (header and chunk lengths), or nullopt.
std::optional<std::string> glb_container_problem(const std::string& bytes);

}  // namespace kairo::control
