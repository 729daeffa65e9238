#include "control-plane/verified_token_cache.hpp"

namespace kairo::control {

std::optional<AccessClaims> VerifiedTokenCache::find(const std::string& digest, int64_t now_s) {
  std::lock_guard lock(mutex_);
  const auto it = by_digest_.find(digest);
  if (it == by_digest_.end()) return std::nullopt;
  if (it->second.expires_at <= now_s) {
    by_digest_.erase(it);
    return std::nullopt;
  }
  return it->second;
}

void VerifiedTokenCache::keep(const std::string& digest, const AccessClaims& claims) {
  std::lock_guard lock(mutex_);
  if (by_digest_.size() >= kCapacity) by_digest_.clear();
  by_digest_.insert_or_assign(digest, claims);
}

size_t VerifiedTokenCache::size() const {
  std::lock_guard lock(mutex_);
  return by_digest_.size();
}

}  // namespace kairo::control
