#pragma once
// The node's disk cache of catalogue scenes (#16, docs/scenes.md "Delivery"): files named by their SHA-256,
// each verified before it is kept (and again when the node starts), within a size limit, least recently used
// first out. Sessions name a catalogue scene by hash; a node that does not hold it fetches it once from the
// control plane (node/node_agent.cpp) and keeps it for the next session. Thread-safe.
#include <cstdint>
#include <filesystem>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kairo {

class SceneCache {
 public:
  // `dir` empty: a private temporary directory, removed with the cache (no reuse across restarts). Files
  // there from an earlier run are verified; those that fail, and half-written ones, are removed.
  SceneCache(std::filesystem::path dir, uint64_t budget_bytes);
  ~SceneCache();
  SceneCache(const SceneCache&) = delete;
  SceneCache& operator=(const SceneCache&) = delete;

  // The file, if held (and now the most recently used).
  std::optional<std::filesystem::path> find(const std::string& sha256);
  // Verifies the bytes against the hash (throws kairo::Error naming both on a mismatch), writes them
  // atomically, and evicts the least recently used others until the cache fits its budget. A file larger than
  // the whole budget is refused.
  std::filesystem::path store(const std::string& sha256, const std::string& bytes);
  std::vector<std::string> held() const;  // most recently used first
  uint64_t bytes() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  struct Entry {
    std::string sha256;
    uint64_t bytes = 0;
  };
  std::filesystem::path file_of(const std::string& sha256) const;

  std::filesystem::path dir_;
  bool owned_ = false;  // a temporary directory of ours
  const uint64_t budget_bytes_;
  mutable std::mutex mutex_;
  std::list<Entry> entries_;  // most recently used first
  uint64_t bytes_ = 0;
};

}  // namespace kairo
