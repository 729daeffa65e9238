#include "control-plane/verified_token_cache.hpp"

namespace kairo::control {

std::optional<AccessClaims> VerifiedTokenCache::find(const std::string& digest, int64_t now_s) {
  Shard& shard = shard_of(digest);
  std::lock_guard lock(shard.mutex);
  const auto it = shard.by_digest.find(digest);
  if (it == shard.by_digest.end()) return std::nullopt;
  if (it->second.expires_at <= now_s) {
    shard.by_digest.erase(it);
    return std::nullopt;
  }
  return it->second;
}

void VerifiedTokenCache::keep(const std::string& digest, const AccessClaims& claims) {
  Shard& shard = shard_of(digest);
  std::lock_guard lock(shard.mutex);
  if (shard.by_digest.size() >= kPerShard) shard.by_digest.clear();
  shard.by_digest.insert_or_assign(digest, claims);
}

size_t VerifiedTokenCache::size() const {
  size_t sum = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    sum += shard.by_digest.size();
  }
  return sum;
}

}  // namespace kairo::control
