#pragma once
// Credentials of the control plane: argon2id password hashes (libsodium), signed access tokens (JWT HS256
// through libjwt, 15 minutes), and opaque random tokens (refresh and node tokens) stored only as hashes.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace kairo::control {

enum class Role { kClient, kOperator, kAdmin };
const char* role_name(Role role);
std::optional<Role> parse_role(const std::string& name);

// Argon2id with libsodium's interactive limits: about 0.1 s and 64 MiB per hash, on purpose.
std::string hash_password(const std::string& password);
bool verify_password(const std::string& hash, const std::string& password);

// 32 random bytes, base64url (43 characters); and the SHA-256-sized BLAKE2b hash that is stored instead.
std::string random_token();
std::string token_hash(const std::string& token);  // 32 raw bytes as a string

struct AccessClaims {
  int64_t user_id = 0;
  std::string username;
  Role role = Role::kClient;
  int64_t expires_at = 0;  // unix seconds
  std::string family;      // the login (refresh-token family) it was issued for; empty for none
};

inline constexpr int64_t kAccessTokenLifetimeS = 15 * 60;

class VerifiedTokenCache;

class AccessTokens {
 public:
  // `previous_key` (optional) verifies but never signs: during a rolling rotation of the signing key every
  // replica signs with the new key and still accepts what the old one signed until those tokens expire.
  explicit AccessTokens(std::string signing_key, int64_t lifetime_s = kAccessTokenLifetimeS,
                        std::string previous_key = "");
  std::string issue(int64_t user_id, const std::string& username, Role role, int64_t now_s,
                    const std::string& family = "") const;
  // Verifies signature (HS256 only: "alg":"none" and every other algorithm are refused), expiry and claims.
  // A token that verified is kept (by its hash, with its claims) and found again without the signature work;
  // its expiry is checked on every call.
  std::optional<AccessClaims> verify(const std::string& token, int64_t now_s) const;
  size_t tokens_kept() const;
  int64_t lifetime_s() const { return lifetime_s_; }
  // A 32-byte key for `purpose`, derived from the signing key: the same on every replica that shares it,
  // and telling nothing of the signing key (BLAKE2b of the purpose and the key).
  std::string derived_key(const std::string& purpose) const;

 private:
  std::optional<AccessClaims> verify_with(const std::string& key, const std::string& token,
                                          int64_t now_s) const;
  std::string key_, previous_key_;
  int64_t lifetime_s_;
  std::shared_ptr<VerifiedTokenCache> verified_;  // shared by copies (same keys)
};

}  // namespace kairo::control
