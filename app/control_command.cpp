#include <spdlog/spdlog.h>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "app/cli_parsing.hpp"
#include "app/commands.hpp"
#include "control-plane/api_error.hpp"
#include "control-plane/control_api.hpp"
#include "core/error.hpp"
#include "core/log_format.hpp"

namespace kairo::app {

Runner add_control_command(CLI::App& app) {
  struct Options {
    std::string db, listen = "127.0.0.1:8080", tls_cert, tls_key, bootstrap_admin, node_token, token_key;
    std::string bootstrap_admin_file, node_token_file, token_key_file, previous_token_key,
        previous_token_key_file;
    int max_sessions_client = 4, max_sessions_operator = 64;
    double session_rate_per_user = 600;
    std::vector<std::string> trusted_proxies;
    bool allow_plain_http = false;
    // 4 connections: each is a PostgreSQL backend process, and more of them running than the database has
    // cores contend. On the 2-core fleet bench (issue 14), 8 made the database's CPU for the same work vary
    // from 0.55 to 0.85 core and the tail collapse in a third of the runs; 4 did not in 10. Raise it with the
    // database's cores (about two per core).
    int threads = 2, pool = 4;
    control::SceneBudget scene_budget{};
    uint64_t scene_max_mb = 256, scene_max_texture_mb = 1024;
  };
  auto o = std::make_shared<Options>();
  // Every flag can also come from a KAIRO_-prefixed environment variable (secrets belong there, not in argv).
  app.add_option("--db", o->db, "PostgreSQL URL")->envname("KAIRO_DB")->required();
  app.add_option("--listen", o->listen, "HOST:PORT")->envname("KAIRO_LISTEN")->capture_default_str();
  app.add_option("--tls-cert", o->tls_cert, "PEM certificate chain (HTTPS)")->envname("KAIRO_TLS_CERT");
  app.add_option("--tls-key", o->tls_key, "PEM private key (HTTPS)")->envname("KAIRO_TLS_KEY");
  app.add_option("--bootstrap-admin", o->bootstrap_admin, "USER:PASSWORD of the first admin")
      ->envname("KAIRO_BOOTSTRAP_ADMIN");
  app.add_option("--bootstrap-admin-file", o->bootstrap_admin_file,
                 "a file holding USER:PASSWORD of the first admin")
      ->envname("KAIRO_BOOTSTRAP_ADMIN_FILE");
  app.add_option(
         "--node-token", o->node_token,
         "a fleet-wide node token accepted without minting (simple set-ups: any holder acts as any node "
         "registered with it)")
      ->envname("KAIRO_NODE_TOKEN");
  app.add_option("--node-token-file", o->node_token_file, "a file holding the fleet-wide node token")
      ->envname("KAIRO_NODE_TOKEN_FILE");
  app.add_option("--token-key", o->token_key,
                 "access-token signing key (default: generated once, shared in the database)")
      ->envname("KAIRO_TOKEN_KEY");
  app.add_option("--token-key-file", o->token_key_file, "a file holding the access-token signing key")
      ->envname("KAIRO_TOKEN_KEY_FILE");
  app.add_option("--previous-token-key", o->previous_token_key,
                 "while rotating the signing key: the old key, accepted for tokens it signed, never signing")
      ->envname("KAIRO_PREVIOUS_TOKEN_KEY");
  app.add_option("--previous-token-key-file", o->previous_token_key_file, "a file holding the previous key")
      ->envname("KAIRO_PREVIOUS_TOKEN_KEY_FILE");
  app.add_option("--max-sessions-per-client", o->max_sessions_client,
                 "live sessions one client user may hold at once (0: no limit)")
      ->envname("KAIRO_MAX_SESSIONS_PER_CLIENT")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  app.add_option("--max-sessions-per-operator", o->max_sessions_operator,
                 "live sessions one operator or admin may hold at once (0: no limit)")
      ->envname("KAIRO_MAX_SESSIONS_PER_OPERATOR")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  app.add_option("--session-rate-per-user", o->session_rate_per_user,
                 "sessions one user may create per minute, after a burst of 50 (0: no limit, for benchmarks)")
      ->envname("KAIRO_SESSION_RATE_PER_USER")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--trusted-proxy", o->trusted_proxies,
                 "an address (the ingress in front) whose X-Request-Id is kept; repeatable")
      ->envname("KAIRO_TRUSTED_PROXIES")
      ->delimiter(',');
  app.add_flag("--allow-plain-http", o->allow_plain_http, "serve plain HTTP on a non-loopback address")
      ->envname("KAIRO_ALLOW_PLAIN_HTTP");
  app.add_option("--threads", o->threads, "HTTP threads")
      ->envname("KAIRO_THREADS")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--db-pool", o->pool, "database connections")
      ->envname("KAIRO_DB_POOL")
      ->capture_default_str()
      ->check(CLI::Range(1, 200));
  app.add_option("--scene-max-mb", o->scene_max_mb, "largest scene file an upload may be (MiB)")
      ->envname("KAIRO_SCENE_MAX_MB")
      ->capture_default_str()
      ->check(CLI::Range(1, 4000));
  app.add_option("--scene-max-triangles", o->scene_budget.max_triangles, "most triangles a scene may draw")
      ->envname("KAIRO_SCENE_MAX_TRIANGLES")
      ->capture_default_str();
  app.add_option("--scene-max-texture-mb", o->scene_max_texture_mb,
                 "most decoded texture memory (RGBA) a scene may take (MiB)")
      ->envname("KAIRO_SCENE_MAX_TEXTURE_MB")
      ->capture_default_str();
  app.add_option("--scene-max-draws", o->scene_budget.max_draws,
                 "most draws (mesh instances) a scene may have")
      ->envname("KAIRO_SCENE_MAX_DRAWS")
      ->capture_default_str();
  return [o] {
    const std::string bootstrap_admin = read_secret(o->bootstrap_admin, o->bootstrap_admin_file,
                                                    "--bootstrap-admin", "KAIRO_BOOTSTRAP_ADMIN");
    const std::string node_token =
        read_secret(o->node_token, o->node_token_file, "--node-token", "KAIRO_NODE_TOKEN");
    const std::string token_key =
        read_secret(o->token_key, o->token_key_file, "--token-key", "KAIRO_TOKEN_KEY");
    const std::string previous_token_key = read_secret(o->previous_token_key, o->previous_token_key_file,
                                                       "--previous-token-key", "KAIRO_PREVIOUS_TOKEN_KEY");
    if (!node_token.empty())
      spdlog::warn(
          "a static node token is set: it is fleet-wide (any holder can register nodes and act for every "
          "node "
          "registered with it); for production mint one token per node (POST /v1/node-tokens)");
    const bool tls = !o->tls_cert.empty() || !o->tls_key.empty();
    const bool loopback = o->listen.rfind("127.", 0) == 0 || o->listen.rfind("[::1]", 0) == 0 ||
                          o->listen.rfind("localhost", 0) == 0;
    if (!tls && !loopback && !o->allow_plain_http)
      throw_invalid_input("refusing plain HTTP on " + o->listen +
                          ": give --tls-cert and --tls-key, or --allow-plain-http");
    control::Database db(o->db, o->pool);
    const int version = db.migrate();
    const std::string key =
        token_key.empty() ? db.shared_secret("token_signing_key", control::random_token()) : token_key;
    if (!previous_token_key.empty() && token_key.empty())
      throw_invalid_input("--previous-token-key is for a rotation: give the new key with --token-key too");
    control::AccessTokens tokens(key, control::kAccessTokenLifetimeS, previous_token_key);
    control::AuthService auth(db, tokens);
    if (!bootstrap_admin.empty()) {
      const size_t colon = bootstrap_admin.find(':');
      if (colon == std::string::npos) throw_invalid_input("--bootstrap-admin must be USER:PASSWORD");
      try {
        auth.bootstrap_admin(bootstrap_admin.substr(0, colon), bootstrap_admin.substr(colon + 1));
      } catch (const control::ApiError& e) {
        throw_invalid_input(std::string("--bootstrap-admin: ") + e.what());
      }
    }
    control::CatalogueOptions scenes{.budget = o->scene_budget, .inspection = {}};
    scenes.budget.max_file_bytes = o->scene_max_mb << 20;
    scenes.budget.max_texture_bytes = o->scene_max_texture_mb << 20;
    // Uploads are loaded by this very binary's `scene inspect`, in a sandboxed child.
    scenes.inspection.inspector = std::filesystem::read_symlink("/proc/self/exe").string();
    control::FleetService fleet(db);
    control::DownNodeSweeper sweeper(fleet, fleet.heartbeat_interval_s());
    control::ControlApi api(db, auth, tokens, fleet, node_token,
                            control::RateLimits{.sessions_per_user_per_minute = o->session_rate_per_user,
                                                .max_live_sessions_client = o->max_sessions_client,
                                                .max_live_sessions_operator = o->max_sessions_operator},
                            control::ApiOptions{.trusted_proxies = o->trusted_proxies, .scenes = scenes});
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    control::HttpServer server(api.serving(control::HttpServerOptions{.listen = o->listen,
                                                                      .threads = o->threads,
                                                                      .workers = o->pool,
                                                                      .body_limit = 64 * 1024,
                                                                      .tls_cert_file = o->tls_cert,
                                                                      .tls_key_file = o->tls_key}),
                               [&api](const control::HttpRequest& r) { return api.handle(r); });
    announce("schema v" + std::to_string(version) + ", listening on " + o->listen + " port " +
             std::to_string(server.port()) + " (" + (server.tls() ? "https" : "http") + ")");
    int received = 0;
    sigwait(&signals, &received);
    return 0;
  };
}

}  // namespace kairo::app
