// The control plane under load, against the database's own ceiling: sessions created and ended per second,
// with create/end latency p50/p99, at 1, 50 and 500 concurrent clients over HTTP (one connection per request,
// as the reference client does), next to pgbench's TPS (TPC-B-like, 5 s) on the same PostgreSQL in the same
// invocation. Rate limits are off (they would be the bottleneck by design); four nodes with room for all.
// Usage: kairo_control_bench [seconds per level, default 5]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pqxx/connection>
#include <pqxx/transaction>
#include <string>
#include <thread>
#include <vector>

#include "bench/pgbench.hpp"
#include "control-plane/control_api.hpp"
#include "control-plane/http_client.hpp"
#include "control-plane/proto/control.pb.h"
#include "core/percentile.hpp"
#include "tests/postgres_server.hpp"

namespace kairo::control {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace
}  // namespace kairo::control

int main(int argc, char** argv) {
  using namespace kairo::control;
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
  kairo::test::PostgresServer pg;
  Database db(pg.url(), 16);
  db.migrate();
  AccessTokens tokens(std::string(48, 'b'));
  AuthService auth(db, tokens);
  FleetService fleet(db, 2.0);
  ControlApi api(db, auth, tokens, fleet, "bench-node-token",
                 RateLimits{.login_per_address_per_minute = 0,
                            .login_per_user_per_minute = 0,
                            .sessions_per_user_per_minute = 0,
                            .max_live_sessions_client = 0});
  HttpServer server(HttpServerOptions{.listen = "127.0.0.1:0", .threads = 4},
                    [&api](const HttpRequest& r) { return api.handle(r); });
  for (int n = 0; n < 4; ++n) {
    kairo::v1::NodeRegistration node;
    node.set_name("bench-" + std::to_string(n));
    node.set_address("127.0.0.1:" + std::to_string(9000 + n));
    node.set_device("bench");
    node.add_encoders("x264:h264");
    node.add_scenes("vr-room");
    node.set_max_sessions(10000);
    fleet.register_node(node, NodeCredential{});
  }
  // 500 users straight into the table (argon2id hashing 500 passwords would dominate set-up), one token each.
  std::vector<std::string> bearer;
  db.transact([&](pqxx::work& w) {
    for (int i = 0; i < 500; ++i) {
      const auto id = w.exec_params(
                           "INSERT INTO users (username, password_hash, role) VALUES ($1, 'x', 'client') "
                           "RETURNING id",
                           "bench" + std::to_string(i))[0][0]
                          .as<int64_t>();
      bearer.push_back(tokens.issue(id, "bench" + std::to_string(i), Role::kClient,
                                    std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count()));
    }
  });
  // pgbench's tables in the same database.
  if (!kairo::bench::pgbench_initialise(pg.port())) std::fprintf(stderr, "pgbench -i failed\n");

  std::printf(
      "| clients | sessions created+ended /s | create p50 / p99 ms | end p50 / p99 ms | errors | pgbench "
      "clients "
      "| pgbench TPS | sessions/s per pgbench TPS |\n|---|---|---|---|---|---|---|---|\n");
  for (int clients : {1, 50, 500}) {
    std::mutex mutex;
    std::vector<double> create_ms, end_ms;
    std::atomic<uint64_t> pairs{0}, errors{0};
    const auto stop_at = Clock::now() + std::chrono::seconds(seconds);
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
      threads.emplace_back([&, c] {
        std::vector<double> mine_create, mine_end;
        while (Clock::now() < stop_at) {
          try {
            auto t0 = Clock::now();
            const auto created = http_request(
                int(server.port()), "POST", "/v1/sessions",
                R"({"scene":"vr-room","eye_width":512,"eye_height":512,"fps":72})", bearer[size_t(c)]);
            auto t1 = Clock::now();
            if (created.status != 201) {
              ++errors;
              continue;
            }
            const std::string id = nlohmann::json::parse(created.body)["session_id"].get<std::string>();
            const auto ended =
                http_request(int(server.port()), "DELETE", "/v1/sessions/" + id, "", bearer[size_t(c)]);
            auto t2 = Clock::now();
            if (ended.status != 204) {
              ++errors;
              continue;
            }
            mine_create.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            mine_end.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
            ++pairs;
          } catch (const std::exception&) {
            ++errors;
          }
        }
        std::lock_guard lock(mutex);
        create_ms.insert(create_ms.end(), mine_create.begin(), mine_create.end());
        end_ms.insert(end_ms.end(), mine_end.begin(), mine_end.end());
      });
    for (auto& t : threads) t.join();
    const double rate = double(pairs) / seconds;
    // PostgreSQL here allows 200 connections; pgbench gets at most 150 of them.
    const int pg_clients = std::min(clients, 150);
    const double tps = kairo::bench::pgbench_tps(pg.port(), pg_clients, seconds);
    std::printf("| %d | %.0f | %.1f / %.1f | %.1f / %.1f | %llu | %d | %.0f | %.2f |\n", clients, rate,
                kairo::percentile(create_ms, 0.5), kairo::percentile(create_ms, 0.99),
                kairo::percentile(end_ms, 0.5), kairo::percentile(end_ms, 0.99),
                static_cast<unsigned long long>(errors.load()), pg_clients, tps, tps > 0 ? rate / tps : 0.0);
    std::fflush(stdout);
  }
  return 0;
}
