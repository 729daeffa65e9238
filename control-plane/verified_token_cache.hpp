#pragma once
// Access tokens this replica has verified already, by the BLAKE2b hash of their text (as FleetService keeps
// node credentials). Verifying a token (base64, JSON, HMAC through libjwt) cost about 7 % of a replica's CPU
// at 1,000 user requests a second (issue 14), for the same few tokens over and over: each is now verified
// once, then found here. Only tokens that verified are kept; expiry is checked again on every find, and
// revocation stays the caller's check. Bounded: when full it is emptied (its tokens are verified again).
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "control-plane/credentials.hpp"

namespace kairo::control {

class VerifiedTokenCache {
 public:
  static constexpr size_t kCapacity = 16'384;

  // `digest`: token_hash(token). The claims when kept and not expired at `now_s`.
  std::optional<AccessClaims> find(const std::string& digest, int64_t now_s);
  void keep(const std::string& digest, const AccessClaims& claims);
  size_t size() const;

 private:
  mutable std::mutex mutex_;  // held for one map operation
  std::unordered_map<std::string, AccessClaims> by_digest_;
};

}  // namespace kairo::control
