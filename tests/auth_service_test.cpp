#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "control-plane/api_error.hpp"
#include "control-plane/auth_service.hpp"
#include "tests/postgres_server.hpp"

namespace kairo::control {
namespace {

class AuthServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server = new test::PostgresServer();
    db = new Database(server->url(), 4);
    db->migrate();
  }
  static void TearDownTestSuite() {
    delete db;
    delete server;
  }
  int audit_count(const std::string& event) {
    int n = 0;
    db->transact([&](pqxx::work& w) {
      n = w.exec_params("SELECT count(*) FROM audit_log WHERE event = $1", event)[0][0].as<int>();
    });
    return n;
  }
  static test::PostgresServer* server;
  static Database* db;
  AccessTokens tokens{std::string(32, 's')};
};
test::PostgresServer* AuthServiceTest::server = nullptr;
Database* AuthServiceTest::db = nullptr;

TEST_F(AuthServiceTest, login_gives_a_token_pair_and_failed_logins_are_audited) {
  AuthService auth(*db, tokens);
  auth.create_user("alice", "alice-password", Role::kClient);
  const auto pair = auth.login("alice", "alice-password", "127.0.0.1");
  ASSERT_TRUE(pair);
  EXPECT_EQ(pair->expires_in, 900);
  const auto claims = tokens.verify(pair->access_token, std::time(nullptr));
  ASSERT_TRUE(claims);
  EXPECT_EQ(claims->username, "alice");
  const int before = audit_count("login_failed");
  EXPECT_FALSE(auth.login("alice", "wrong", "127.0.0.1"));
  EXPECT_FALSE(auth.login("nobody", "whatever", "127.0.0.1"));
  EXPECT_EQ(audit_count("login_failed"), before + 2);
  // Passwords and tokens never reach the audit log.
  db->transact([&](pqxx::work& w) {
    EXPECT_EQ(
        w.exec("SELECT count(*) FROM audit_log WHERE detail LIKE '%password%' AND detail <> 'wrong password'")
            [0][0]
                .as<int>(),
        0);
  });
}

TEST_F(AuthServiceTest, refresh_rotates_and_reusing_a_spent_token_revokes_the_family) {
  AuthService auth(*db, tokens);
  auth.create_user("bob", "bob-password", Role::kOperator);
  const auto first = auth.login("bob", "bob-password", "a");
  ASSERT_TRUE(first);
  const auto second = auth.refresh(first->refresh_token, "a");
  ASSERT_TRUE(second);
  EXPECT_NE(second->refresh_token, first->refresh_token);
  EXPECT_FALSE(auth.refresh(first->refresh_token, "attacker"));  // spent: reuse detected
  EXPECT_FALSE(auth.refresh(second->refresh_token, "a"));        // the whole family is gone
  EXPECT_GE(audit_count("refresh_token_reuse"), 1);
  // A separate login is a separate family and still works.
  const auto other = auth.login("bob", "bob-password", "b");
  ASSERT_TRUE(other);
  EXPECT_TRUE(auth.refresh(other->refresh_token, "b"));
}

TEST_F(AuthServiceTest, logout_revokes_and_is_idempotent) {
  AuthService auth(*db, tokens);
  auth.create_user("carol", "carol-password", Role::kClient);
  const auto pair = auth.login("carol", "carol-password", "c");
  ASSERT_TRUE(pair);
  auth.logout(pair->refresh_token, "c");
  EXPECT_FALSE(auth.refresh(pair->refresh_token, "c"));
  EXPECT_NO_THROW(auth.logout(pair->refresh_token, "c"));
  EXPECT_NO_THROW(auth.logout("never-issued", "c"));
}

TEST_F(AuthServiceTest, user_names_are_validated_and_unique_and_sql_is_never_interpreted) {
  AuthService auth(*db, tokens);
  EXPECT_THROW(auth.create_user("", "long-enough", Role::kClient), ApiError);
  EXPECT_THROW(auth.create_user("robert'); DROP TABLE users;--", "long-enough", Role::kClient), ApiError);
  EXPECT_THROW(auth.create_user("dave", "short", Role::kClient), ApiError);
  auth.create_user("dave", "long-enough", Role::kClient);
  try {
    auth.create_user("dave", "long-enough", Role::kClient);
    ADD_FAILURE() << "duplicate accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 409);
  }
  EXPECT_FALSE(auth.login("x' OR '1'='1", "x' OR '1'='1", "z"));
  auth.bootstrap_admin("root", "root-password");
  auth.bootstrap_admin("root", "other-password");  // never changes an existing user
  EXPECT_TRUE(auth.login("root", "root-password", "z"));
}

}  // namespace
}  // namespace kairo::control
