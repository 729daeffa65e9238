#include "control-plane/credentials.hpp"

#include <jwt.h>
#include <sodium.h>

#include <memory>
#include <stdexcept>

#include "control-plane/verified_token_cache.hpp"
#include "core/error.hpp"

namespace kairo::control {
namespace {

void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) throw_runtime("libsodium failed to initialise");
}

struct JwtDeleter {
  void operator()(jwt_t* j) const { jwt_free(j); }
};

}  // namespace

const char* role_name(Role role) {
  switch (role) {
    case Role::kClient:
      return "client";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

std::optional<Role> parse_role(const std::string& name) {
  if (name == "client") return Role::kClient;
  if (name == "operator") return Role::kOperator;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

std::string hash_password(const std::string& password) {
  ensure_sodium();
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(hash, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                            crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
    throw_runtime("out of memory hashing a password");
  return hash;
}

bool verify_password(const std::string& hash, const std::string& password) {
  ensure_sodium();
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::string random_token() {
  ensure_sodium();
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof(bytes));
  char text[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(text, sizeof(text), bytes, sizeof(bytes), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return text;
}

std::string token_hash(const std::string& token) {
  ensure_sodium();
  unsigned char hash[32];
  crypto_generichash(hash, sizeof(hash), reinterpret_cast<const unsigned char*>(token.data()), token.size(),
                     nullptr, 0);
  return std::string(reinterpret_cast<const char*>(hash), sizeof(hash));
}

std::string AccessTokens::derived_key(const std::string& purpose) const {
  std::string out(crypto_generichash_BYTES, '\0');
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, out.size());
  // The purpose with its terminating NUL: a separator, so that no purpose and key run into another's.
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(purpose.c_str()),
                            purpose.size() + 1);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(key_.data()), key_.size());
  crypto_generichash_final(&state, reinterpret_cast<unsigned char*>(out.data()), out.size());
  return out;
}

AccessTokens::AccessTokens(std::string signing_key, int64_t lifetime_s, std::string previous_key)
    : key_(std::move(signing_key)),
      previous_key_(std::move(previous_key)),
      lifetime_s_(lifetime_s),
      verified_(std::make_shared<VerifiedTokenCache>()) {
  if (key_.size() < 32) throw_invalid_input("the token signing key must be at least 32 bytes");
  if (!previous_key_.empty() && previous_key_.size() < 32)
    throw_invalid_input("the previous token signing key must be at least 32 bytes");
}

std::string AccessTokens::issue(int64_t user_id, const std::string& username, Role role, int64_t now_s,
                                const std::string& family) const {
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) throw_runtime("cannot create a token");
  std::unique_ptr<jwt_t, JwtDeleter> token(raw);
  jwt_add_grant(token.get(), "sub", std::to_string(user_id).c_str());
  jwt_add_grant(token.get(), "name", username.c_str());
  jwt_add_grant(token.get(), "role", role_name(role));
  if (!family.empty()) jwt_add_grant(token.get(), "fam", family.c_str());
  jwt_add_grant_int(token.get(), "iat", long(now_s));
  jwt_add_grant_int(token.get(), "exp", long(now_s + lifetime_s_));
  jwt_set_alg(token.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(key_.data()),
              int(key_.size()));
  std::unique_ptr<char, void (*)(void*)> text(jwt_encode_str(token.get()), free);
  if (!text) throw_runtime("cannot sign a token");
  return text.get();
}

std::optional<AccessClaims> AccessTokens::verify(const std::string& text, int64_t now_s) const {
  if (text.empty() || text.size() > 4096) return std::nullopt;
  const std::string digest = token_hash(text);
  if (auto kept = verified_->find(digest, now_s)) return kept;
  auto claims = verify_with(key_, text, now_s);
  if (!claims && !previous_key_.empty()) claims = verify_with(previous_key_, text, now_s);
  if (claims) verified_->keep(digest, *claims);
  return claims;
}

size_t AccessTokens::tokens_kept() const {
  return verified_->size();
}

std::optional<AccessClaims> AccessTokens::verify_with(const std::string& key, const std::string& text,
                                                      int64_t now_s) const {
  jwt_t* raw = nullptr;
  if (jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char*>(key.data()), int(key.size())) !=
      0)
    return std::nullopt;
  std::unique_ptr<jwt_t, JwtDeleter> token(raw);
  if (jwt_get_alg(token.get()) != JWT_ALG_HS256) return std::nullopt;  // no "none", no algorithm confusion
  const long expires = jwt_get_grant_int(token.get(), "exp");
  const char* subject = jwt_get_grant(token.get(), "sub");
  const char* name = jwt_get_grant(token.get(), "name");
  const char* role_text = jwt_get_grant(token.get(), "role");
  const char* family = jwt_get_grant(token.get(), "fam");
  if (expires <= now_s || subject == nullptr || name == nullptr || role_text == nullptr) return std::nullopt;
  const auto role = parse_role(role_text);
  if (!role) return std::nullopt;
  try {
    return AccessClaims{.user_id = std::stoll(subject),
                        .username = name,
                        .role = *role,
                        .expires_at = expires,
                        .family = family ? family : ""};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace kairo::control
