#include "node/scene_cache.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "core/content_hash.hpp"
#include "core/error.hpp"
#include "core/file_bytes.hpp"
#include "core/names.hpp"

namespace kairo {

namespace {

// A file whose bytes still hash to its name (an unreadable one is not).
bool intact(const std::filesystem::path& file, const std::string& sha256) {
  try {
    return sha256_hex(read_file_bytes(file)) == sha256;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

SceneCache::SceneCache(std::filesystem::path dir, uint64_t budget_bytes)
    : dir_(std::move(dir)), budget_bytes_(budget_bytes) {
  if (dir_.empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "kairo-scene-cache-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw_runtime("cannot make a temporary scene cache directory");
    dir_ = pattern;
    owned_ = true;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw_invalid_input("cannot make the scene cache " + dir_.string() + ": " + ec.message());
  // What an earlier run left: kept if its bytes still match its name, oldest first out.
  std::vector<std::pair<std::filesystem::file_time_type, Entry>> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string hash = name.substr(0, name.find('.'));
    const bool ours = entry.is_regular_file() && entry.path().extension() == ".glb" && is_sha256_hex(hash) &&
                      name == hash + ".glb";
    if (ours && intact(entry.path(), hash)) {
      found.push_back({entry.last_write_time(), Entry{hash, uint64_t(entry.file_size())}});
      continue;
    }
    if (entry.is_regular_file() && (ours || entry.path().extension() == ".partial")) {
      spdlog::warn("scene cache: removing {} (damaged or half written)", escape_for_log(name));
      std::filesystem::remove(entry.path(), ec);
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (auto& [time, e] : found) {
    bytes_ += e.bytes;
    entries_.push_back(std::move(e));
  }
}

SceneCache::~SceneCache() {
  if (!owned_) return;
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::filesystem::path SceneCache::file_of(const std::string& sha256) const {
  return dir_ / (sha256 + ".glb");
}

std::optional<std::filesystem::path> SceneCache::find(const std::string& sha256) {
  std::lock_guard lock(mutex_);
  const auto it =
      std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.sha256 == sha256; });
  if (it == entries_.end()) return std::nullopt;
  entries_.splice(entries_.begin(), entries_, it);
  std::error_code ignored;  // the order survives a restart
  std::filesystem::last_write_time(file_of(sha256), std::filesystem::file_time_type::clock::now(), ignored);
  return file_of(sha256);
}

std::filesystem::path SceneCache::store(const std::string& sha256, const std::string& bytes) {
  if (!is_sha256_hex(sha256)) throw_invalid_input("not a SHA-256: " + escape_for_log(sha256.substr(0, 80)));
  const std::string actual = sha256_hex(bytes);
  if (actual != sha256)
    throw_runtime("scene bytes do not match their hash: expected " + sha256 + ", got " + actual);
  if (bytes.size() > budget_bytes_)
    throw_runtime("scene of " + std::to_string(bytes.size()) + " bytes exceeds the whole scene cache (" +
                  std::to_string(budget_bytes_) + " bytes, --scene-cache-mb)");
  std::lock_guard lock(mutex_);
  const std::filesystem::path file = file_of(sha256);
  if (std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.sha256 == sha256; }) ==
      entries_.end()) {
    // Written beside, then renamed: a crash never leaves a file under a hash it does not match.
    const std::filesystem::path partial = dir_ / (sha256 + ".partial");
    {
      std::ofstream out(partial, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), std::streamsize(bytes.size()));
      if (!out) throw_runtime("cannot write " + partial.string() + " (disk full?)");
    }
    std::filesystem::rename(partial, file);
    entries_.push_front(Entry{sha256, bytes.size()});
    bytes_ += bytes.size();
  }
  while (bytes_ > budget_bytes_ && entries_.size() > 1) {
    const Entry victim = entries_.back();
    entries_.pop_back();
    bytes_ -= victim.bytes;
    std::error_code ignored;
    std::filesystem::remove(file_of(victim.sha256), ignored);
    spdlog::info("scene cache: evicted {} ({} bytes, least recently used)", victim.sha256, victim.bytes);
  }
  return file;
}

std::vector<std::string> SceneCache::held() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.push_back(e.sha256);
  return out;
}

uint64_t SceneCache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

}  // namespace kairo
