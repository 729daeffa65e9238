#pragma once
// Access tokens this replica has verified already, by the BLAKE2b hash of their text. Verifying a token
// (base64, JSON, HMAC through libjwt) cost about 7 % of a replica's CPU at 1,000 user requests a second
// (issue 14), for the same few tokens over and over: each is now verified once, then found here. Only tokens
// that verified are kept; expiry is checked again on every find, and revocation stays the caller's check.
// Bounded: a shard that is full is emptied (its tokens are verified again). Sharded by the hash, so that the
// replica's threads do not meet on one lock.
#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "control-plane/credentials.hpp"

namespace kairo::control {

class VerifiedTokenCache {
 public:
  static constexpr size_t kShards = 16, kPerShard = 1024;

  // `digest`: token_hash(token). The claims when kept and not expired at `now_s`.
  std::optional<AccessClaims> find(const std::string& digest, int64_t now_s);
  void keep(const std::string& digest, const AccessClaims& claims);
  size_t size() const;

 private:
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, AccessClaims> by_digest;
  };
  Shard& shard_of(const std::string& digest) {
    return shards_[uint8_t(digest.empty() ? 0 : digest[0]) % kShards];
  }
  std::array<Shard, kShards> shards_;
};

}  // namespace kairo::control
