#include "control-plane/auth_service.hpp"

#include <cctype>
#include <chrono>
#include <pqxx/pqxx>

#include "control-plane/api_error.hpp"
#include "core/clock.hpp"
#include "core/names.hpp"

namespace kairo::control {
namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

pqxx::binarystring as_bytes(const std::string& raw) {
  return pqxx::binarystring(raw.data(), raw.size());
}

void validate_username(const std::string& name) {
  if (const auto problem = name_problem(name, 64))
    throw ApiError(400, "invalid_username", "username " + *problem);
  for (unsigned char c : name)
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '@'))
      throw ApiError(400, "invalid_username", "username may hold letters, digits and _ - . @ only");
}

void validate_password(const std::string& password) {
  if (password.size() < 8 || password.size() > 1024)
    throw ApiError(400, "invalid_password", "password must be 8 to 1024 characters");
}

}  // namespace

AuthService::AuthService(Database& db, const AccessTokens& tokens, int64_t refresh_lifetime_s)
    : db_(db),
      tokens_(tokens),
      refresh_lifetime_s_(refresh_lifetime_s),
      dummy_hash_(hash_password(random_token())) {}

void AuthService::revoke_locally(const std::string& family) {
  std::lock_guard lock(revoked_mutex_);
  revoked_families_.insert(family);
  revoked_since_sync_.insert(family);
}

bool AuthService::access_revoked(const AccessClaims& claims) {
  if (claims.family.empty()) return false;
  sync_revocations();
  std::lock_guard lock(revoked_mutex_);
  return revoked_families_.count(claims.family) > 0;
}

// At most once a second, by one request; the others go on with the current list (the lock is never held
// across the database read).
void AuthService::sync_revocations() {
  {
    std::lock_guard lock(revoked_mutex_);
    const int64_t now = steady_now_ns();
    if (revoked_syncing_ || now - revoked_synced_ns_ < 1'000'000'000) return;
    revoked_syncing_ = true;
    revoked_synced_ns_ = now;
    revoked_since_sync_.clear();
  }
  std::unordered_set<std::string> families;
  bool read = false;
  try {
    db_.transact([&](pqxx::work& w) {
      families.clear();
      for (const auto& r : w.exec_params("SELECT DISTINCT family FROM refresh_tokens WHERE revoked_at > "
                                         "now() - make_interval(secs => $1)",
                                         double(tokens_.lifetime_s() + 60)))
        families.insert(r[0].as<std::string>());
    });
    read = true;
  } catch (const std::exception&) {
    // database briefly unavailable: keep the last list; a request a second later tries again
  }
  std::lock_guard lock(revoked_mutex_);
  if (read) {
    // What this replica revoked while the read ran may have committed after it: keep those too.
    families.insert(revoked_since_sync_.begin(), revoked_since_sync_.end());
    revoked_families_.swap(families);
  }
  revoked_syncing_ = false;
}

void AuthService::audit(const std::string& event, const std::string& username, const std::string& address,
                        const std::string& detail) {
  db_.transact([&](pqxx::work& w) {
    w.exec_params("INSERT INTO audit_log (event, username, address, detail) VALUES ($1, $2, $3, $4)", event,
                  username, address, detail);
  });
}

void AuthService::bootstrap_admin(const std::string& username, const std::string& password) {
  validate_username(username);
  validate_password(password);
  const std::string hash = hash_password(password);
  db_.transact([&](pqxx::work& w) {
    w.exec_params(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, 'admin') ON CONFLICT (username) "
        "DO NOTHING",
        username, hash);
  });
}

int64_t AuthService::create_user(const std::string& username, const std::string& password, Role role) {
  validate_username(username);
  validate_password(password);
  const std::string hash = hash_password(password);
  int64_t id = 0;
  db_.transact([&](pqxx::work& w) {
    const auto row = w.exec_params(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) ON CONFLICT (username) DO "
        "NOTHING RETURNING id",
        username, hash, role_name(role));
    if (row.empty()) throw ApiError(409, "user_exists", "a user with that name exists");
    id = row[0][0].as<int64_t>();
  });
  return id;
}

TokenPair AuthService::issue(pqxx::work& w, int64_t user_id, const std::string& username, Role role,
                             const std::string& family) {
  const int64_t now = unix_now();
  TokenPair pair{.access_token = tokens_.issue(user_id, username, role, now, family),
                 .refresh_token = random_token(),
                 .expires_in = tokens_.lifetime_s()};
  w.exec_params(
      "INSERT INTO refresh_tokens (user_id, family, token_hash, expires_at) VALUES ($1, $2, $3, "
      "to_timestamp($4))",
      user_id, family, as_bytes(token_hash(pair.refresh_token)), now + refresh_lifetime_s_);
  return pair;
}

std::optional<TokenPair> AuthService::login(const std::string& username, const std::string& password,
                                            const std::string& address) {
  std::optional<TokenPair> result;
  bool known = false;
  db_.transact([&](pqxx::work& w) {
    const auto rows =
        w.exec_params("SELECT id, password_hash, role FROM users WHERE username = $1", username);
    if (rows.empty()) {
      // As slow as a wrong password (argon2id), so timing does not tell which user names exist.
      (void)verify_password(dummy_hash_, password);
      return;
    }
    known = true;
    if (!verify_password(rows[0][1].as<std::string>(), password)) return;
    const auto role = parse_role(rows[0][2].as<std::string>());
    result = issue(w, rows[0][0].as<int64_t>(), username, role.value_or(Role::kClient), random_token());
  });
  if (!result) audit("login_failed", username, address, known ? "wrong password" : "unknown user");
  return result;
}

std::optional<TokenPair> AuthService::refresh(const std::string& refresh_token, const std::string& address) {
  std::optional<TokenPair> result;
  std::string reused_by, revoked_family;
  db_.transact([&](pqxx::work& w) {
    const auto rows = w.exec_params(
        "SELECT t.id, t.user_id, t.family, t.spent_at IS NOT NULL, t.revoked_at IS NOT NULL, t.expires_at < "
        "now(), "
        "u.username, u.role FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1 "
        "FOR UPDATE OF t",
        as_bytes(token_hash(refresh_token)));
    if (rows.empty()) return;
    const auto& r = rows[0];
    const std::string family = r[2].as<std::string>();
    if (r[3].as<bool>()) {
      // A spent token presented again: someone else holds the family. End it for everyone.
      w.exec_params("UPDATE refresh_tokens SET revoked_at = now() WHERE family = $1 AND revoked_at IS NULL",
                    family);
      reused_by = r[6].as<std::string>();
      revoked_family = family;
      return;
    }
    if (r[4].as<bool>() || r[5].as<bool>()) return;
    w.exec_params("UPDATE refresh_tokens SET spent_at = now() WHERE id = $1", r[0].as<int64_t>());
    result = issue(w, r[1].as<int64_t>(), r[6].as<std::string>(),
                   parse_role(r[7].as<std::string>()).value_or(Role::kClient), family);
  });
  if (!revoked_family.empty()) revoke_locally(revoked_family);
  if (!reused_by.empty()) audit("refresh_token_reuse", reused_by, address, "family revoked");
  return result;
}

void AuthService::logout(const std::string& refresh_token, const std::string& address) {
  std::string username, family;
  db_.transact([&](pqxx::work& w) {
    const auto rows = w.exec_params(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family = (SELECT family FROM refresh_tokens "
        "WHERE token_hash = $1) "
        "AND revoked_at IS NULL RETURNING (SELECT username FROM users WHERE id = user_id), family",
        as_bytes(token_hash(refresh_token)));
    if (!rows.empty()) {
      username = rows[0][0].as<std::string>();
      family = rows[0][1].as<std::string>();
    }
  });
  if (!family.empty()) revoke_locally(family);
  if (!username.empty()) audit("logout", username, address, "");
}

}  // namespace kairo::control
