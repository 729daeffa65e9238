#include "control-plane/scene_catalogue.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>
#include <pqxx/pqxx>

#include "control-plane/api_error.hpp"
#include "control-plane/fleet_service.hpp"
#include "control-plane/page_cursor.hpp"
#include "control-plane/proto/control.pb.h"
#include "core/names.hpp"

namespace kairo::control {

namespace {

constexpr size_t kChunkBytes = 1 << 20;

uint32_t u32_at(const std::string& bytes, size_t at) {
  return uint32_t(uint8_t(bytes[at])) | uint32_t(uint8_t(bytes[at + 1])) << 8 |
         uint32_t(uint8_t(bytes[at + 2])) << 16 | uint32_t(uint8_t(bytes[at + 3])) << 24;
}

// "1,234,567": budgets are read by people.
std::string grouped(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

v1::SceneVersion version_message(const pqxx::row& r) {
  v1::SceneVersion v;
  v.set_name(r["name"].as<std::string>());
  v.set_version(r["version"].as<int32_t>());
  v.set_sha256(r["sha256"].as<std::string>());
  v.set_size(r["size"].as<int64_t>());
  v.set_triangles(r["triangles"].as<int64_t>());
  v.set_textures(r["textures"].as<int32_t>());
  v.set_texture_bytes(r["texture_bytes"].as<int64_t>());
  v.set_draws(r["draws"].as<int32_t>());
  v.set_created_at(r["created"].as<std::string>());
  return v;
}

constexpr const char* kVersionColumns =
    "name, version, sha256, size, triangles, textures, texture_bytes, draws, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created";

}  // namespace

// GLB 2.0 (glTF 2.0 spec, "Binary glTF Layout"): a 12-byte header (magic, version, total length), then
// chunks of (length, type, data) with the JSON chunk first. Checked here, before anything is spawned: a
// truncated upload is told so in those words, not as whatever the loader makes of half a file.
std::optional<std::string> glb_container_problem(const std::string& bytes) {
  if (bytes.size() < 20 || u32_at(bytes, 0) != 0x46546C67)
    return "not a binary glTF (.glb) file: upload a .glb (`kairo scene upload` packs a .gltf with its files "
           "into one)";
  if (u32_at(bytes, 4) != 2) return "GLB version " + std::to_string(u32_at(bytes, 4)) + ", not 2";
  const uint64_t declared = u32_at(bytes, 8);
  if (declared > bytes.size())
    return "truncated: the GLB header says " + grouped(declared) + " bytes, " + grouped(bytes.size()) +
           " arrived";
  if (declared < bytes.size())
    return "the GLB header says " + grouped(declared) + " bytes but " + grouped(bytes.size()) +
           " arrived: trailing data";
  size_t at = 12;
  bool first = true;
  while (at < bytes.size()) {
    if (bytes.size() - at < 8) return "truncated: a GLB chunk header is cut off";
    const uint64_t length = u32_at(bytes, at);
    const uint32_t type = u32_at(bytes, at + 4);
    if (first && type != 0x4E4F534A) return "the GLB's first chunk is not its JSON";
    if (length > bytes.size() - at - 8) return "truncated: a GLB chunk runs past the end of the file";
    at += 8 + size_t(length);
    first = false;
  }
  return std::nullopt;
}

SceneCatalogue::SceneCatalogue(Database& db, CatalogueOptions options)
    : db_(db), options_(std::move(options)) {}

v1::SceneVersion SceneCatalogue::upload(const std::string& name, const std::string& glb,
                                        const std::optional<std::string>& expected_sha256, int64_t user_id) {
  if (const auto problem = name_problem(name, 128))
    throw ApiError(400, "invalid_scene_name", "name " + *problem);
  if (glb.size() > options_.budget.max_file_bytes)
    throw ApiError(413, "scene_too_large",
                   "the scene is " + grouped(glb.size()) + " bytes; uploads take at most " +
                       grouped(options_.budget.max_file_bytes));
  const std::string sha256 = sha256_hex(glb);
  if (expected_sha256 && *expected_sha256 != sha256)
    throw ApiError(400, "hash_mismatch",
                   "the upload's SHA-256 is " + sha256 + ", not the " + expected_sha256->substr(0, 64) +
                       " it was sent with: truncated or changed on the way; nothing stored");
  if (const auto problem = glb_container_problem(glb)) throw ApiError(400, "invalid_scene", *problem);
  const SceneStats stats = inspect_scene_in_sandbox(glb, options_.inspection);
  const SceneBudget& b = options_.budget;
  std::string over;
  const auto exceeds = [&](const char* what, uint64_t value, uint64_t limit) {
    if (value <= limit) return;
    over += (over.empty() ? "" : "; ") + std::string(what) + " " + grouped(value) + " > " + grouped(limit);
  };
  exceeds("triangles", stats.triangles, b.max_triangles);
  exceeds("texture bytes", stats.texture_bytes, b.max_texture_bytes);
  exceeds("draws", uint64_t(stats.draws), uint64_t(b.max_draws));
  if (!over.empty()) throw ApiError(400, "over_budget", "the scene exceeds its budget: " + over);

  v1::SceneVersion stored;
  db_.transact([&](pqxx::work& w) {
    // Uploads of one name take their version numbers one at a time.
    w.exec_params("SELECT pg_advisory_xact_lock(hashtextextended('kairo_scene:' || $1, 0))", name);
    // Content-addressed: bytes already stored (another name, an earlier version) are not stored again.
    const bool fresh = !w.exec_params(
                             "INSERT INTO scene_blobs (sha256, size) VALUES ($1, $2) ON CONFLICT DO "
                             "NOTHING RETURNING sha256",
                             sha256, int64_t(glb.size()))
                            .empty();
    if (fresh) {
      for (size_t at = 0, seq = 0; at < glb.size(); at += kChunkBytes, ++seq) {
        const std::string_view chunk(glb.data() + at, std::min(kChunkBytes, glb.size() - at));
        w.exec_params("INSERT INTO scene_chunks (sha256, seq, bytes) VALUES ($1, $2, $3)", sha256, int(seq),
                      pqxx::binarystring(chunk.data(), chunk.size()));
      }
    }
    const auto row = w.exec_params(
        std::string(
            "INSERT INTO scene_versions (name, version, sha256, size, triangles, textures, "
            "texture_bytes, draws, uploaded_by) SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, "
            "$5, $6, $7, $8 FROM scene_versions WHERE name = $1 RETURNING ") +
            kVersionColumns,
        name, sha256, int64_t(glb.size()), int64_t(stats.triangles), stats.textures,
        int64_t(stats.texture_bytes), stats.draws, user_id);
    stored = version_message(row[0]);
  });
  spdlog::info("scene {} version {} stored: {} bytes, sha256 {}, {} triangles, {} textures",
               escape_for_log(name), stored.version(), glb.size(), sha256, stats.triangles, stats.textures);
  return stored;
}

std::vector<v1::SceneVersion> SceneCatalogue::list(const PageRequest& page, std::string& next_cursor) {
  const int limit = page_limit(page);
  std::optional<std::string> after_name;
  std::optional<int> after_version;
  if (!page.cursor.empty()) {
    const std::string key = decode_cursor(page.cursor);
    const size_t bar = key.rfind('|');
    if (bar == std::string::npos || bar == 0 || bar + 1 == key.size() ||
        key.find_first_not_of("0123456789", bar + 1) != std::string::npos || key.size() - bar > 10)
      throw ApiError(400, "invalid_cursor", "malformed cursor: pass back a next_cursor as it was given");
    after_name = key.substr(0, bar);
    after_version = std::stoi(key.substr(bar + 1));
  }
  std::vector<v1::SceneVersion> out;
  next_cursor.clear();
  db_.transact([&](pqxx::work& w) {
    out.clear();
    const auto rows =
        w.exec_params(std::string("SELECT ") + kVersionColumns +
                          " FROM scene_versions WHERE $1::text IS NULL OR (name, version) > ($1, "
                          "$2::int) ORDER BY name, version LIMIT $3",
                      after_name, after_version, limit + 1);
    for (const auto& r : rows) {
      if (int(out.size()) == limit) {
        next_cursor = encode_cursor(out.back().name() + "|" + std::to_string(out.back().version()));
        break;
      }
      out.push_back(version_message(r));
    }
  });
  return out;
}

void SceneCatalogue::remove(const std::string& name) {
  db_.transact([&](pqxx::work& w) {
    w.exec_params("SELECT pg_advisory_xact_lock(hashtextextended('kairo_scene:' || $1, 0))", name);
    const auto hashes = w.exec_params("SELECT DISTINCT sha256 FROM scene_versions WHERE name = $1", name);
    if (hashes.empty()) throw ApiError(404, "not_found", "no scene \"" + name + "\" in the catalogue");
    const auto users = w.exec_params(
        "SELECT id, count(*) OVER () FROM sessions WHERE live AND scene_sha256 IN "
        "(SELECT sha256 FROM scene_versions WHERE name = $1) ORDER BY created_at LIMIT 10",
        name);
    if (!users.empty()) {
      std::string ids;
      for (const auto& r : users) ids += (ids.empty() ? "" : ", ") + r[0].as<std::string>();
      const int64_t count = users[0][1].as<int64_t>();
      throw ApiError(409, "scene_in_use",
                     "scene \"" + name + "\" is used by " + std::to_string(count) + " live session" +
                         (count == 1 ? "" : "s") + " (" + ids + (count > 10 ? ", ..." : "") +
                         "): end them first; nothing deleted");
    }
    w.exec_params("DELETE FROM scene_versions WHERE name = $1", name);
    // Bytes no other name or version points at go too (their chunks with them).
    w.exec_params(
        "DELETE FROM scene_blobs b WHERE b.sha256 = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM "
        "scene_versions v WHERE v.sha256 = b.sha256)",
        [&] {
          std::string literal = "{";
          for (const auto& r : hashes) literal += (literal.size() > 1 ? "," : "") + r[0].as<std::string>();
          return literal + "}";
        }());
  });
  spdlog::info("scene {} deleted from the catalogue", escape_for_log(name));
}

std::optional<std::string> SceneCatalogue::blob(const std::string& sha256) {
  std::optional<std::string> out;
  db_.transact([&](pqxx::work& w) {
    out.reset();
    const auto size = w.exec_params("SELECT size FROM scene_blobs WHERE sha256 = $1", sha256);
    if (size.empty()) return;
    std::string bytes;
    bytes.reserve(size[0][0].as<size_t>());
    for (const auto& r :
         w.exec_params("SELECT bytes FROM scene_chunks WHERE sha256 = $1 ORDER BY seq", sha256)) {
      const pqxx::binarystring chunk(r[0]);
      bytes.append(chunk.get(), chunk.size());
    }
    out = std::move(bytes);
  });
  return out;
}

}  // namespace kairo::control
