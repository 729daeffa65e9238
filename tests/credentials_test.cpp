#include <gtest/gtest.h>

#include <sodium.h>

#include "control-plane/credentials.hpp"
#include "control-plane/verified_token_cache.hpp"
#include "core/error.hpp"

namespace kairo::control {
namespace {

const std::string kKey(40, 'k');

std::string base64url(const std::string& text) {
  std::string out(sodium_base64_ENCODED_LEN(text.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(text.data()), text.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.find('\0'));
  return out;
}

TEST(Credentials, passwords_are_argon2id_hashes_that_verify_only_the_right_password) {
  const std::string hash = hash_password("correct horse");
  EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u);
  EXPECT_TRUE(verify_password(hash, "correct horse"));
  EXPECT_FALSE(verify_password(hash, "correct horsE"));
  EXPECT_NE(hash_password("correct horse"), hash);  // salted
}

TEST(Credentials, access_tokens_round_trip_and_expire) {
  AccessTokens tokens(kKey, 900);
  const std::string t = tokens.issue(7, "ada", Role::kOperator, 1000);
  const auto claims = tokens.verify(t, 1100);
  ASSERT_TRUE(claims);
  EXPECT_EQ(claims->user_id, 7);
  EXPECT_EQ(claims->username, "ada");
  EXPECT_EQ(claims->role, Role::kOperator);
  EXPECT_EQ(claims->expires_at, 1900);
  EXPECT_FALSE(tokens.verify(t, 1900));  // expired
}

TEST(Credentials, forged_wrong_key_alg_none_and_garbage_tokens_are_refused) {
  AccessTokens tokens(kKey), other(std::string(40, 'x'));
  const std::string good = tokens.issue(1, "root", Role::kAdmin, 1000);
  EXPECT_FALSE(tokens.verify(other.issue(1, "root", Role::kAdmin, 1000), 1001));  // signed with another key
  // Payload changed, signature kept.
  const size_t dot1 = good.find('.'), dot2 = good.rfind('.');
  const std::string forged_payload =
      base64url(R"({"sub":"1","name":"root","role":"admin","iat":1000,"exp":99999999999})");
  EXPECT_FALSE(tokens.verify(good.substr(0, dot1 + 1) + forged_payload + good.substr(dot2), 1001));
  // "alg":"none" with no signature.
  const std::string none = base64url(R"({"alg":"none","typ":"JWT"})") + "." + forged_payload + ".";
  EXPECT_FALSE(tokens.verify(none, 1001));
  EXPECT_FALSE(tokens.verify("not.a.token", 1001));
  EXPECT_FALSE(tokens.verify("", 1001));
  EXPECT_FALSE(tokens.verify(std::string(10000, 'a'), 1001));
  EXPECT_TRUE(tokens.verify(good, 1001));
}

TEST(Credentials, a_verified_token_is_kept_by_its_hash_and_a_tampered_copy_is_still_refused) {
  AccessTokens tokens(kKey, 900);
  const std::string good = tokens.issue(5, "bo", Role::kClient, 1000);
  ASSERT_TRUE(tokens.verify(good, 1001));
  EXPECT_EQ(tokens.tokens_kept(), 1u);
  const auto again = tokens.verify(good, 1002);  // found, not verified again
  ASSERT_TRUE(again);
  EXPECT_EQ(again->user_id, 5);
  EXPECT_EQ(again->username, "bo");
  EXPECT_EQ(tokens.tokens_kept(), 1u);
  // One character of the signature changed: another hash, so verified, and refused.
  std::string tampered = good;
  char& in_signature = tampered[tampered.rfind('.') + 5];  // not the last (its low bits are padding)
  in_signature = in_signature == 'A' ? 'B' : 'A';
  EXPECT_FALSE(tokens.verify(tampered, 1003));
  EXPECT_EQ(tokens.tokens_kept(), 1u);      // only what verified is kept
  EXPECT_FALSE(tokens.verify(good, 1900));  // expiry is checked on every call, kept or not
  EXPECT_EQ(tokens.tokens_kept(), 0u);
  // Bounded: many distinct tokens never keep more than the cache's capacity.
  for (int i = 0; i < 20'000; ++i)
    ASSERT_TRUE(tokens.verify(tokens.issue(i, "u", Role::kClient, 1000), 1001));
  EXPECT_LE(tokens.tokens_kept(), VerifiedTokenCache::kCapacity);
  EXPECT_GT(tokens.tokens_kept(), 0u);
}

TEST(Credentials, a_rotated_key_signs_while_the_previous_one_only_verifies_until_its_tokens_expire) {
  const std::string old_key(40, 'o'), new_key(40, 'n');
  AccessTokens before(old_key, 900), rotating(new_key, 900, old_key), after(new_key, 900);
  const std::string old_token = before.issue(3, "ops", Role::kOperator, 1000);
  const std::string new_token = rotating.issue(3, "ops", Role::kOperator, 1000);
  EXPECT_TRUE(rotating.verify(old_token, 1100));  // a replica mid-rotation accepts both
  EXPECT_TRUE(rotating.verify(new_token, 1100));
  EXPECT_FALSE(before.verify(new_token, 1100));  // signed with the new key, not the old one
  EXPECT_TRUE(after.verify(new_token, 1100));
  EXPECT_FALSE(after.verify(old_token, 1100));     // the previous key dropped: its tokens refused
  EXPECT_FALSE(rotating.verify(old_token, 1900));  // and expiry still holds under the previous key
  EXPECT_THROW(AccessTokens(new_key, 900, "short"), Error);
}

TEST(Credentials, random_tokens_are_unique_and_stored_only_as_hashes) {
  const std::string a = random_token(), b = random_token();
  EXPECT_EQ(a.size(), 43u);
  EXPECT_NE(a, b);
  EXPECT_EQ(token_hash(a).size(), 32u);
  EXPECT_EQ(token_hash(a), token_hash(a));
  EXPECT_NE(token_hash(a), token_hash(b));
}

}  // namespace
}  // namespace kairo::control
