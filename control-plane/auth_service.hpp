#pragma once
// Users, login, rotating refresh tokens and logout, on the database. A refresh token is spent when used and
// replaced by a new one of the same family (one login); presenting a spent token again means it was stolen,
// so the whole family is revoked. Security events go to the audit log; secrets never do.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>

#include "control-plane/credentials.hpp"
#include "control-plane/database.hpp"

namespace kairo::control {

struct TokenPair {
  std::string access_token;
  std::string refresh_token;
  int64_t expires_in = 0;  // seconds, of the access token
};

class AuthService {
 public:
  AuthService(Database& db, const AccessTokens& tokens, int64_t refresh_lifetime_s = 30 * 24 * 3600);

  // Creates the user if absent (first admin from a flag or environment variable); never changes an existing
  // one.
  void bootstrap_admin(const std::string& username, const std::string& password);
  // Throws ApiError: 400 for an invalid name, password or role, 409 if the name is taken.
  int64_t create_user(const std::string& username, const std::string& password, Role role);
  // nullopt for unknown user or wrong password (the same answer, to reveal nothing), audited.
  std::optional<TokenPair> login(const std::string& username, const std::string& password,
                                 const std::string& address);
  std::optional<TokenPair> refresh(const std::string& refresh_token, const std::string& address);
  // Revokes the token's family. Unknown tokens are ignored (logout is idempotent).
  void logout(const std::string& refresh_token, const std::string& address);
  void audit(const std::string& event, const std::string& username, const std::string& address,
             const std::string& detail);
  // True when the access token's login was ended (logout, or a refresh token reused): its access tokens stop
  // working at once on this replica and within a second on the others, not when they expire. Each replica
  // re-reads the families revoked within an access token's lifetime at most once a second (one indexed
  // query), so the check costs no database round trip per request.
  bool access_revoked(const AccessClaims& claims);

 private:
  void revoke_locally(const std::string& family);
  void sync_revocations();
  TokenPair issue(pqxx::work& w, int64_t user_id, const std::string& username, Role role,
                  const std::string& family);

  Database& db_;
  const AccessTokens& tokens_;
  int64_t refresh_lifetime_s_;
  // Verified when a user name is unknown, so that a login takes as long whether or not the user exists.
  std::string dummy_hash_;
  std::mutex revoked_mutex_;
  std::unordered_set<std::string> revoked_families_;  // revoked within an access token's lifetime
  std::unordered_set<std::string> revoked_since_sync_;
  int64_t revoked_synced_ns_ = 0;
  bool revoked_syncing_ = false;
};

}  // namespace kairo::control
