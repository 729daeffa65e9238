#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <thread>

#include "control-plane/database.hpp"
#include "tests/postgres_server.hpp"

namespace kairo::control {
namespace {

TEST(Database, migrations_apply_once_even_when_two_replicas_start_together) {
  test::PostgresServer server;
  Database a(server.url(), 2), b(server.url(), 2);
  int version_a = 0, version_b = 0;
  std::thread first([&] { version_a = a.migrate(); });
  std::thread second([&] { version_b = b.migrate(); });
  first.join();
  second.join();
  EXPECT_EQ(version_a, a.expected_schema_version());
  EXPECT_EQ(version_b, b.expected_schema_version());
  EXPECT_TRUE(a.ready());
  int rows = 0;
  a.transact([&](pqxx::work& w) { rows = w.exec("SELECT count(*) FROM schema_migrations")[0][0].as<int>(); });
  EXPECT_EQ(rows, a.expected_schema_version());
  EXPECT_EQ(a.migrate(), a.expected_schema_version());  // idempotent
}

TEST(Database, a_restarted_database_is_reconnected_without_a_restart_of_ours) {
  test::PostgresServer server;
  Database db(server.url(), 2);
  db.migrate();
  db.transact([](pqxx::work& w) {
    w.exec("INSERT INTO users (username, password_hash, role) VALUES ('before', 'x', 'client')");
  });
  server.stop();
  EXPECT_FALSE(db.ready());
  server.start();
  int users = 0;
  db.transact([&](pqxx::work& w) { users = w.exec("SELECT count(*) FROM users")[0][0].as<int>(); });
  EXPECT_EQ(users, 1);  // the acknowledged write survived the restart
  EXPECT_TRUE(db.ready());
}

}  // namespace
}  // namespace kairo::control
