// The fleet at scale (issue 14): N simulated nodes and U users against R `kairo control` replicas on one
// PostgreSQL, all on their real protocol over HTTP/1.1 keep-alive, in one process on Asio (C++20
// coroutines: a node is a loop of feed requests, a user a loop of session requests). Next to it, pgbench's
// TPS on the same PostgreSQL in the same run, for scale.
//
// Phases: the nodes register and attach to their feed; the users fill the fleet to S live sessions (the
// placement rate per thousand sessions shows whether it stays flat as the fleet fills); then churn for
// --churn seconds (each user ends one of its sessions and creates another). Per request kind p50/p99, every
// status code, and when each created session reached its node (its feed's answer), measured from the
// creating request's start.
//
// --rate R offers R session creations a second in all (each user on its own schedule; in the churn phase R
// ends and creates) instead of each user sending its next request when the last is answered: latency at a
// given load, not at saturation. Each scheduled request starts then on an idle connection of its user's
// (an open system: it does not wait for that user's earlier requests), and its latency is measured from
// the scheduled time (a request sent late because the bench was slow counts its wait: no coordinated
// omission).
//
// --replica-cpus C gives each replica C cores and no more (a CPU cgroup with a CFS quota, what a Kubernetes
// pod's CPU limit is): replicas then scale as on machines of their own instead of sharing this machine's
// cores with each other, PostgreSQL and the load generator. Each replica's CPU time over the fill is
// reported either way (placements per replica CPU-second: what a replica costs).
//
// A session end under --rate is also reported from the moment it was sent ("session end (from sent)"): the
// difference from its scheduled time is the wait behind its user's previous end and create. --trace FILE
// writes every request as one JSON line (kind, status, and its scheduled, sent and answered times in ms from
// the bench's start) to see where a tail came from.
//
// Usage: kairo_fleet_bench [--nodes 1000] [--sessions 10000] [--users 20] [--replicas 1] [--churn 20]
//                          [--rate 0] [--replica-cpus 0] [--kairo build/kairo] [--json FILE] [--trace FILE]
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/pgbench.hpp"
#include "core/clock.hpp"
#include "core/percentile.hpp"
#include "devdb/dev_database.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using nlohmann::json;
using tcp = asio::ip::tcp;

const std::string kNodeToken = "fleet-bench-node-token-0123456789abcdef";

struct Options {
  int nodes = 1000, sessions = 10000, users = 20, replicas = 1;
  double churn_s = 20, rate = 0;  // rate 0: each user as fast as it is answered
  double replica_cpus = 0;        // 0: no limit
  std::string kairo = "build/kairo", json_file, trace_file;
};

// A CPU cgroup limited to `cpus` cores (CFS quota per 100 ms period): cgroup v1's cpu hierarchy, else v2's
// cpu.max. Throws when neither can be made (not root, or no cpu controller).
class CpuCgroup {
 public:
  CpuCgroup(const std::string& name, double cpus) {
    const long period_us = 100000, quota_us = std::max(1000L, long(cpus * double(period_us)));
    const std::filesystem::path v1 = "/sys/fs/cgroup/cpu", v2 = "/sys/fs/cgroup";
    if (std::filesystem::exists(v1 / "cpu.cfs_quota_us")) {
      dir_ = v1 / name;
      std::filesystem::create_directory(dir_);
      write("cpu.cfs_period_us", std::to_string(period_us));
      write("cpu.cfs_quota_us", std::to_string(quota_us));
    } else if (std::ifstream in(v2 / "cgroup.controllers"); in) {
      std::ofstream(v2 / "cgroup.subtree_control") << "+cpu";
      dir_ = v2 / name;
      std::filesystem::create_directory(dir_);
      write("cpu.max", std::to_string(quota_us) + " " + std::to_string(period_us));
    } else {
      throw std::runtime_error("--replica-cpus needs a CPU cgroup (cgroup v1 cpu or v2 cpu.max), as root");
    }
  }
  ~CpuCgroup() {
    std::error_code ignored;
    std::filesystem::remove(dir_, ignored);  // empty once its process has exited
  }
  // Called in the child before exec: the replica and every thread it starts are counted against the quota.
  bool adopt_self() const {
    std::ofstream out(dir_ / "cgroup.procs");
    out << getpid() << std::flush;
    return bool(out);
  }

 private:
  void write(const char* file, const std::string& value) const {
    std::ofstream out(dir_ / file);
    out << value << std::flush;
    if (!out) throw std::runtime_error("cannot write " + (dir_ / file).string());
  }
  std::filesystem::path dir_;
};

// A process's CPU seconds (user and system) and its parent, from /proc/PID/stat.
struct ProcessCpu {
  double seconds = 0;
  pid_t parent = -1;
};
ProcessCpu process_cpu(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  const size_t close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return {};
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  ProcessCpu cpu;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {  // field 4: the parent; 14 and 15: utime, stime
    if (i == 4) cpu.parent = pid_t(std::atoi(field.c_str()));
    if (i >= 14) ticks += std::stod(field);
  }
  cpu.seconds = ticks / double(sysconf(_SC_CLK_TCK));
  return cpu;
}
double cpu_seconds(pid_t pid) {
  return process_cpu(pid).seconds;
}

// The PostgreSQL server's CPU seconds: its postmaster (the first line of postmaster.pid) and the live
// children. The replicas' connections last through the run, so differences over a phase count their backends'
// work.
double server_cpu_seconds(const std::filesystem::path& data_directory) {
  std::ifstream pid_file(data_directory / "postmaster.pid");
  pid_t postmaster = -1;
  if (!(pid_file >> postmaster)) return 0;
  double sum = cpu_seconds(postmaster);
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const ProcessCpu cpu = process_cpu(pid_t(std::atoi(name.c_str())));
    if (cpu.parent == postmaster) sum += cpu.seconds;
  }
  return sum;
}

// The sessions table's row updates, and how many of them were HOT (the new version on the same page, no index
// entry written), from PostgreSQL's statistics through psql: {0, 0} when it cannot be read.
struct RowUpdates {
  double updates = 0, hot = 0;
};
RowUpdates session_row_updates(int port) {
  const std::string bin = kairo::bench::pgbench_binary();
  if (bin.empty()) return {};
  const std::string psql = std::filesystem::path(bin).parent_path() / "psql";
  const std::string command =
      psql + kairo::bench::pgbench_connection(port) +
      "-Atc \"SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = "
      "'sessions'\" kairo 2>/dev/null";
  RowUpdates out;
  std::sscanf(kairo::bench::first_output_line(command).c_str(), "%lf|%lf", &out.updates, &out.hot);
  return out;
}

std::string cores_text(double cores) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f", cores);
  return text;
}

// `kairo control` as operators run it, on a kernel-chosen port read back from its start-up line.
class Replica {
 public:
  Replica(const Options& o, const std::string& db, const std::filesystem::path& log, int index) {
    if (o.replica_cpus > 0)
      cgroup_ = std::make_unique<CpuCgroup>(
          "kairo-fleet-bench-" + std::to_string(getpid()) + "-" + std::to_string(index), o.replica_cpus);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // goes with the bench, however it ends
      if (cgroup_ && !cgroup_->adopt_self()) _exit(125);
      setenv("KAIRO_DB", db.c_str(), 1);
      setenv("KAIRO_LISTEN", "127.0.0.1:0", 1);
      setenv("KAIRO_NODE_TOKEN", kNodeToken.c_str(), 1);
      setenv("KAIRO_TOKEN_KEY", std::string(48, 'b').c_str(), 1);
      setenv("KAIRO_BOOTSTRAP_ADMIN", "admin:fleet-bench-admin-password", 1);
      setenv("KAIRO_MAX_SESSIONS_PER_CLIENT", "0", 1);
      setenv("KAIRO_SESSION_RATE_PER_USER", "0", 1);  // the rate limit would be the bottleneck by design
      if (std::freopen(log.c_str(), "w", stderr) == nullptr) _exit(126);
      execl(o.kairo.c_str(), o.kairo.c_str(), "control", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 300 && port_ == 0; ++i) {
      std::ifstream in(log);
      const std::string text((std::istreambuf_iterator<char>(in)), {});
      const size_t at = text.find(" port ", text.find("listening on "));
      if (text.find("listening on ") != std::string::npos && at != std::string::npos)
        port_ = uint16_t(std::atoi(text.c_str() + at + 6));
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (port_ == 0) throw std::runtime_error("kairo control did not start; see " + log.string());
  }
  ~Replica() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  uint16_t port() const { return port_; }
  double cpu_seconds() const { return ::cpu_seconds(pid_); }

 private:
  std::unique_ptr<CpuCgroup> cgroup_;  // outlives the process (destroyed after the destructor's wait)
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

struct Answer {
  int status = 0;
  std::string body;
};

// One keep-alive connection to a replica; reconnects when the server closes it.
class Connection {
 public:
  // `source`: the local address to connect from (any of 127.0.0.0/8): the server's per-address limits
  // (logins) then count it apart.
  Connection(asio::any_io_executor executor, uint16_t port, std::string source = "")
      : stream_(executor), port_(port), source_(std::move(source)) {}
  awaitable<Answer> request(http::verb verb, const std::string& target, const std::string& body,
                            const std::string& bearer, double timeout_s = 10) {
    for (int attempt = 0;; ++attempt) {
      try {
        if (!stream_.socket().is_open()) {
          if (!source_.empty()) {  // async_connect keeps a socket already open, and its binding
            stream_.socket().open(tcp::v4());
            stream_.socket().bind(tcp::endpoint(asio::ip::make_address(source_), 0));
          }
          co_await stream_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_),
                                         use_awaitable);
        }
        http::request<http::string_body> req(verb, target, 11);
        req.set(http::field::host, "127.0.0.1");
        req.set(http::field::content_type, "application/json");
        if (!bearer.empty()) req.set(http::field::authorization, "Bearer " + bearer);
        req.keep_alive(true);
        req.body() = body;
        req.prepare_payload();
        stream_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(timeout_s)));
        co_await http::async_write(stream_, req, use_awaitable);
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        co_await http::async_read(stream_, buffer, res, use_awaitable);
        if (!res.keep_alive()) stream_.close();
        co_return Answer{int(res.result_int()), std::move(res.body())};
      } catch (const std::exception&) {
        stream_.close();  // a connection the server closed while idle: once more on a fresh one
        if (attempt >= 1) co_return Answer{0, "connection failed"};
      }
    }
  }

 private:
  beast::tcp_stream stream_;
  uint16_t port_;
  std::string source_;
};

// Everything measured, shared by the coroutines (one io thread per core: a lock, rarely contended).
struct Results {
  std::mutex mutex;
  // By request kind (looked up by the literal naming it, without making a string per request).
  std::map<std::string, std::vector<double>, std::less<>> latency_ms;
  std::map<std::string, std::map<int, uint64_t>, std::less<>> status;  // by request kind, by status
  std::unordered_map<std::string, int64_t> created_at;  // session id -> when its creation request began
  std::vector<double> reach_ms;                         // creation start -> its node's feed had it
  std::vector<double> hold_overshoot_ms;                // unchanged feed answers later than their wait
  std::vector<int64_t> fill_done_ns;                    // when each fill creation answered
  // --trace: every request, its times as steady_now_ns().
  struct Traced {
    const char* kind;
    int status;
    int64_t scheduled_ns, sent_ns, done_ns;
  };
  bool tracing = false;
  std::vector<Traced> trace;
  // A request counted from `start_ns` (its scheduled time, or when it was sent) to `done_ns`.
  void record(const char* kind, int code, int64_t start_ns, int64_t done_ns, int64_t sent_ns = 0) {
    std::lock_guard lock(mutex);
    auto samples = latency_ms.find(std::string_view(kind));
    if (samples == latency_ms.end()) samples = latency_ms.emplace(kind, std::vector<double>{}).first;
    samples->second.push_back(double(done_ns - start_ns) * 1e-6);
    auto statuses = status.find(std::string_view(kind));
    if (statuses == status.end()) statuses = status.emplace(kind, std::map<int, uint64_t>{}).first;
    ++statuses->second[code];
    if (tracing) trace.push_back(Traced{kind, code, start_ns, sent_ns > 0 ? sent_ns : start_ns, done_ns});
  }
};

// Request bodies, built outside the coroutines (GCC 12 miscompiles braced initialiser lists inside them).
std::string registration_body(int index) {
  return json{{"name", "bench-node-" + std::to_string(index)},
              {"address", "127.0.0.1:" + std::to_string(20000 + index)},
              {"device", "simulated"},
              {"encoders", json::array({"x264:h264"})},
              {"scenes", json::array({"vr-room"})},
              {"max_sessions", 12}}
      .dump();
}
std::string user_body(const std::string& name, bool with_role) {
  json body{{"username", name}, {"password", "bench-user-password"}};
  if (with_role) body["role"] = "client";
  return body.dump();
}

// What a simulated node reads of a feed answer: whether it changed, its cursor and its sessions' ids. Read
// with nlohmann's SAX interface, without building the answer's document (a thousand nodes' feeds were a
// fifth of this load generator's CPU, which shares the machine with what it measures).
struct FeedAnswer {
  bool valid = false, changed = false;
  std::string cursor;
  std::vector<std::string> session_ids;
};

class FeedAnswerReader : public nlohmann::json_sax<json> {
 public:
  explicit FeedAnswerReader(FeedAnswer& out) : out_(out) {}
  bool null() override { return true; }
  bool boolean(bool value) override {
    if (depth_ == 1 && key_ == "changed") out_.changed = value;
    return true;
  }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t& value) override {
    if (depth_ == 1 && key_ == "cursor") out_.cursor = std::move(value);
    if (depth_ == 3 && in_sessions_ && key_ == "session_id") out_.session_ids.push_back(std::move(value));
    return true;
  }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 1 && key_ == "sessions") in_sessions_ = true;
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    if (depth_ == 1) in_sessions_ = false;
    return true;
  }
  bool key(string_t& name) override {
    key_ = name;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  FeedAnswer& out_;
  std::string key_;
  int depth_ = 0;  // 1 inside the answer's object, 2 in its sessions array, 3 in one session
  bool in_sessions_ = false;
};

FeedAnswer read_feed_answer(const std::string& body) {
  FeedAnswer answer;
  FeedAnswerReader reader(answer);
  answer.valid = json::sax_parse(body, &reader);
  return answer;
}

awaitable<void> run_node(int index, uint16_t port, Results& results, const std::atomic<bool>& stop,
                         std::atomic<int>& ready) {
  Connection c(co_await asio::this_coro::executor, port);
  const std::string registration = registration_body(index);
  Answer r;
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int64_t start = kairo::steady_now_ns();
    r = co_await c.request(http::verb::post, "/v1/nodes/register", registration, kNodeToken);
    results.record("register", r.status, start, kairo::steady_now_ns());
    if (r.status == 201) break;
  }
  if (r.status != 201) co_return;
  const int64_t id = json::parse(r.body)["node_id"].get<int64_t>();
  ++ready;
  std::string cursor = "0";
  std::set<std::string> running;
  while (!stop) {
    const int64_t start = kairo::steady_now_ns();
    const Answer feed =
        co_await c.request(http::verb::get,
                           "/v1/nodes/" + std::to_string(id) + "/feed?cursor=" + cursor +
                               "&wait_ms=1000&load=" + std::to_string(double(running.size()) / 12.0),
                           "", kNodeToken);
    const int64_t now = kairo::steady_now_ns();
    const double ms = double(now - start) * 1e-6;
    if (feed.status != 200) {
      results.record("feed", feed.status, start, now);
      co_await asio::steady_timer(co_await asio::this_coro::executor, std::chrono::milliseconds(200))
          .async_wait(use_awaitable);
      continue;
    }
    FeedAnswer answer = read_feed_answer(feed.body);
    if (!answer.valid) {
      results.record("feed (unreadable)", 0, start, now);  // counted as failed
      continue;
    }
    if (!answer.changed) {
      results.record("feed (unchanged)", 200, start, now);
      std::lock_guard lock(results.mutex);
      results.hold_overshoot_ms.push_back(
          std::max(0.0, ms - 1000.0));  // the server may answer up to 1/4 early
      continue;
    }
    results.record("feed (changed)", 200, start, now);
    cursor = std::move(answer.cursor);
    std::set<std::string> wanted(std::make_move_iterator(answer.session_ids.begin()),
                                 std::make_move_iterator(answer.session_ids.end())),
        started;
    {
      std::lock_guard lock(results.mutex);
      for (const std::string& sid : wanted) {
        if (running.count(sid)) continue;
        started.insert(sid);
        const auto it = results.created_at.find(sid);
        if (it != results.created_at.end()) results.reach_ms.push_back(double(now - it->second) * 1e-6);
      }
    }
    running = wanted;
    // As a node does: each new session reported running.
    for (const std::string& sid : started) {
      const int64_t t = kairo::steady_now_ns();
      const Answer report =
          co_await c.request(http::verb::post, "/v1/nodes/" + std::to_string(id) + "/sessions/" + sid,
                             R"({"state":"running","reason":""})", kNodeToken);
      results.record("report running", report.status, t, kairo::steady_now_ns());
    }
  }
}

// One user without --rate (closed loop): creates sessions until the fleet holds `target` (shared counter),
// then churns until `stop` (ends one of its sessions, creates another), each request as soon as the last
// is answered: the rate at saturation.
awaitable<void> run_user(uint16_t port, std::string token, Results& results, std::atomic<int>& live,
                         int target, const std::atomic<bool>& churn, const std::atomic<bool>& stop) {
  Connection c(co_await asio::this_coro::executor, port);
  std::vector<std::string> mine;
  std::minstd_rand random(std::random_device{}());
  const auto create = [&]() -> awaitable<bool> {
    const int64_t start = kairo::steady_now_ns();
    const Answer r =
        co_await c.request(http::verb::post, "/v1/sessions",
                           R"({"scene":"vr-room","eye_width":256,"eye_height":256,"fps":30})", token);
    const int64_t done = kairo::steady_now_ns();
    results.record("session create", r.status, start, done);
    if (r.status != 201) co_return false;
    const std::string sid = json::parse(r.body)["session_id"].get<std::string>();
    mine.push_back(sid);
    std::lock_guard lock(results.mutex);
    results.created_at[sid] = start;
    if (!churn) results.fill_done_ns.push_back(done);
    co_return true;
  };
  while (!churn && live < target)
    if (co_await create()) ++live;
  while (!stop && !mine.empty()) {
    const size_t pick = random() % mine.size();
    const int64_t start = kairo::steady_now_ns();
    const Answer r = co_await c.request(http::verb::delete_, "/v1/sessions/" + mine[pick], "", token);
    results.record("session end", r.status, start, kairo::steady_now_ns());
    mine.erase(mine.begin() + ptrdiff_t(pick));
    co_await create();
  }
}

// One user under --rate: at each of its scheduled instants a request starts (while filling, a creation; while
// churning, an end and then a creation) on a connection of its own that is idle, whatever its earlier
// requests are doing: an open system, as a population of users is. Each counts from its scheduled time.
// (Were a user's requests to wait for each other, the user's own queue would count as the server's latency:
// after a stall of 100 ms, pairs sent one at a time drain that backlog for seconds.) Runs on the user's
// strand: its sessions and connections are touched by one coroutine at a time.
awaitable<void> run_user_open(uint16_t port, std::string token, Results& results, std::atomic<int>& live,
                              std::atomic<int>& claimed, int target, const std::atomic<bool>& churn,
                              const std::atomic<bool>& stop, int64_t interval_ns, int64_t first_ns) {
  const auto executor = co_await asio::this_coro::executor;
  struct Shared {
    std::vector<std::unique_ptr<Connection>> idle;
    std::vector<std::string> mine;
  };
  const auto shared = std::make_shared<Shared>();
  const auto borrow = [shared, executor, port] {
    if (shared->idle.empty()) return std::make_unique<Connection>(executor, port);
    std::unique_ptr<Connection> c = std::move(shared->idle.back());
    shared->idle.pop_back();
    return c;
  };
  // A creation counted from `start`; false when it failed.
  const auto create = [shared, token, &results, &churn](Connection& c, int64_t start) -> awaitable<bool> {
    const int64_t sent = kairo::steady_now_ns();
    const Answer r =
        co_await c.request(http::verb::post, "/v1/sessions",
                           R"({"scene":"vr-room","eye_width":256,"eye_height":256,"fps":30})", token);
    const int64_t done = kairo::steady_now_ns();
    results.record("session create", r.status, start, done, sent);
    if (r.status != 201) co_return false;
    const std::string sid = json::parse(r.body)["session_id"].get<std::string>();
    shared->mine.push_back(sid);
    std::lock_guard lock(results.mutex);
    results.created_at[sid] = start;
    if (!churn) results.fill_done_ns.push_back(done);
    co_return true;
  };
  asio::steady_timer timer(executor);
  std::minstd_rand random(std::random_device{}());
  for (int64_t due = first_ns; !stop; due += interval_ns) {
    if (const int64_t now = kairo::steady_now_ns(); due > now) {
      timer.expires_after(std::chrono::nanoseconds(due - now));
      co_await timer.async_wait(use_awaitable);
    }
    if (stop) break;
    if (!churn) {
      if (claimed.fetch_add(1) >= target) {  // the fleet is (about to be) full: wait for the churn
        --claimed;
        continue;
      }
      asio::co_spawn(
          executor,
          [=, &live, &claimed]() -> awaitable<void> {
            std::unique_ptr<Connection> c = borrow();
            if (co_await create(*c, due))
              ++live;
            else
              --claimed;  // another user's next tick tries again
            shared->idle.push_back(std::move(c));
          },
          asio::detached);
    } else if (!shared->mine.empty()) {
      const size_t pick = random() % shared->mine.size();
      std::string ending = std::move(shared->mine[pick]);
      shared->mine.erase(shared->mine.begin() + ptrdiff_t(pick));
      asio::co_spawn(
          executor,
          [=, &results]() -> awaitable<void> {
            std::unique_ptr<Connection> c = borrow();
            const int64_t sent = kairo::steady_now_ns();
            const Answer r = co_await c->request(http::verb::delete_, "/v1/sessions/" + ending, "", token);
            const int64_t done = kairo::steady_now_ns();
            results.record("session end", r.status, due, done, sent);
            results.record("session end (from sent)", r.status, sent, done);
            co_await create(*c, kairo::steady_now_ns());
            shared->idle.push_back(std::move(c));
          },
          asio::detached);
    }
  }
}

// A counter or histogram sum from a replica's /metrics.
double metric(const std::string& text, const std::string& name) {
  const size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? 0 : std::atof(text.c_str() + at + name.size() + 2);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--nodes")
      o.nodes = std::stoi(value);
    else if (flag == "--sessions")
      o.sessions = std::stoi(value);
    else if (flag == "--users")
      o.users = std::clamp(std::stoi(value), 1, 3000);  // 16 logins from each of 127.0.0.2-189
    else if (flag == "--replicas")
      o.replicas = std::stoi(value);
    else if (flag == "--churn")
      o.churn_s = std::stod(value);
    else if (flag == "--rate")
      o.rate = std::stod(value);
    else if (flag == "--replica-cpus")
      o.replica_cpus = std::stod(value);
    else if (flag == "--kairo")
      o.kairo = value;
    else if (flag == "--json")
      o.json_file = value;
    else if (flag == "--trace")
      o.trace_file = value;
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  kairo::DevDatabase db;
  // PostgreSQL's default 100 connections: each replica keeps 8 and one to listen.
  const double tps =
      kairo::bench::pgbench_initialise(db.port()) ? kairo::bench::pgbench_tps(db.port(), 8, 10) : 0;
  kairo::bench::pgbench_drop(db.port());
  const std::filesystem::path logs =
      std::filesystem::temp_directory_path() / ("kairo-fleet-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(logs);
  std::vector<std::unique_ptr<Replica>> replicas;
  for (int r = 0; r < o.replicas; ++r)
    replicas.push_back(
        std::make_unique<Replica>(o, db.url(), logs / ("control-" + std::to_string(r) + ".log"), r));
  const auto replicas_cpu_seconds = [&] {
    double sum = 0;
    for (const auto& r : replicas) sum += r->cpu_seconds();
    return sum;
  };
  const auto port_of = [&](int i) { return replicas[size_t(i % o.replicas)]->port(); };

  asio::io_context io;
  Results results;
  results.tracing = !o.trace_file.empty();
  // Users stop at the churn's end and the nodes 2 s later, so that no request is measured while the simulated
  // fleet hangs up its thousand connections.
  std::atomic<bool> stop{false}, churn{false}, users_stop{false};
  std::atomic<int> ready{0}, live{0};
  // Users (created by the admin through the API), each logged in once.
  std::vector<std::string> tokens;
  {
    asio::io_context setup;
    asio::co_spawn(
        setup,
        [&]() -> awaitable<void> {
          Connection c(co_await asio::this_coro::executor, port_of(0));
          const Answer login =
              co_await c.request(http::verb::post, "/v1/auth/login",
                                 R"({"username":"admin","password":"fleet-bench-admin-password"})", "");
          const std::string admin = json::parse(login.body)["access_token"].get<std::string>();
          std::unique_ptr<Connection> from;  // logins from 127.0.0.2 on, 16 per address (the limit is 20)
          for (int u = 0; u < o.users; ++u) {
            const std::string name = "bench-user-" + std::to_string(u);
            co_await c.request(http::verb::post, "/v1/users", user_body(name, true), admin);
            if (u % 16 == 0)
              from = std::make_unique<Connection>(co_await asio::this_coro::executor, port_of(0),
                                                  "127.0.0." + std::to_string(2 + u / 16));
            const Answer user =
                co_await from->request(http::verb::post, "/v1/auth/login", user_body(name, false), "");
            if (user.status != 200) break;
            tokens.push_back(json::parse(user.body)["access_token"].get<std::string>());
          }
        },
        asio::detached);
    setup.run();
  }
  if (int(tokens.size()) != o.users) {
    std::fprintf(stderr, "fleet_bench: only %zu of %d users could log in\n", tokens.size(), o.users);
    return 1;
  }
  for (int n = 0; n < o.nodes; ++n)
    asio::co_spawn(io, run_node(n, port_of(n), results, stop, ready), asio::detached);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) threads.emplace_back([&] { io.run(); });
  asio::executor_work_guard<asio::io_context::executor_type> keep(io.get_executor());
  while (ready < o.nodes) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::seconds(2));  // every node's feed attached
  const int64_t fill_start = kairo::steady_now_ns();
  const double fill_start_cpu = replicas_cpu_seconds();
  // With --rate, users take turns: user u's schedule starts u/users of an interval after the first's.
  const int64_t interval_ns = o.rate > 0 ? int64_t(double(o.users) / o.rate * 1e9) : 0;
  std::atomic<int> claimed{0};  // open loop: sessions live or being created
  for (int u = 0; u < o.users; ++u) {
    const int64_t first_ns = fill_start + interval_ns * u / o.users;
    if (interval_ns > 0)
      asio::co_spawn(asio::make_strand(io),
                     run_user_open(port_of(u), tokens[size_t(u)], results, live, claimed, o.sessions, churn,
                                   users_stop, interval_ns, first_ns),
                     asio::detached);
    else
      asio::co_spawn(io,
                     run_user(port_of(u), tokens[size_t(u)], results, live, o.sessions, churn, users_stop),
                     asio::detached);
  }
  while (live < o.sessions) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const int64_t fill_end = kairo::steady_now_ns();
  const double fill_cpu = replicas_cpu_seconds() - fill_start_cpu;
  churn = true;
  const int64_t churn_start = kairo::steady_now_ns();
  // Where the machine's CPU goes during the churn: the replicas, PostgreSQL and this load generator share it.
  const std::filesystem::path server_data = db.directory() / "data";
  const double churn_start_cpu[3] = {replicas_cpu_seconds(), server_cpu_seconds(server_data),
                                     cpu_seconds(getpid())};
  const RowUpdates churn_start_updates = session_row_updates(db.port());
  std::this_thread::sleep_for(std::chrono::duration<double>(o.churn_s));
  const double churn_cpu[3] = {replicas_cpu_seconds() - churn_start_cpu[0],
                               server_cpu_seconds(server_data) - churn_start_cpu[1],
                               cpu_seconds(getpid()) - churn_start_cpu[2]};
  uint64_t churned = 0;
  {
    std::lock_guard lock(results.mutex);
    churned = results.latency_ms["session end"].size();
  }
  const double churn_elapsed = double(kairo::steady_now_ns() - churn_start) * 1e-9;
  users_stop = true;
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the last sessions reach their nodes
  // Read after that wait: backends send their statistics within about a second of going idle.
  const RowUpdates churn_end_updates = session_row_updates(db.port());
  const RowUpdates churn_updates{churn_end_updates.updates - churn_start_updates.updates,
                                 churn_end_updates.hot - churn_start_updates.hot};
  stop = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the feeds' waits end
  keep.reset();
  io.stop();
  for (auto& t : threads) t.join();

  // Replicas' own counters.
  double conflicts = 0, placements = 0, lag_sum = 0, lag_count = 0, feeds_from_memory = 0, feeds_read = 0;
  {
    asio::io_context scrape;
    for (int r = 0; r < o.replicas; ++r)
      asio::co_spawn(
          scrape,
          [&, r]() -> awaitable<void> {
            Connection c(co_await asio::this_coro::executor, port_of(r));
            const Answer m = co_await c.request(http::verb::get, "/metrics", "", "");
            conflicts += metric(m.body, "kairo_placement_conflicts_total");
            placements += metric(m.body, "kairo_placements_total");
            lag_sum += metric(m.body, "kairo_node_feed_notification_lag_seconds_sum");
            lag_count += metric(m.body, "kairo_node_feed_notification_lag_seconds_count");
            feeds_from_memory += metric(m.body, "kairo_node_feed_answers_total{from=\"memory\"}");
            feeds_read += metric(m.body, "kairo_node_feed_answers_total{from=\"database\"}");
          },
          asio::detached);
    scrape.run();
  }

  std::lock_guard lock(results.mutex);
  const double fill_s = double(fill_end - fill_start) * 1e-9;
  // Placement rate per thousand sessions placed: flat if placement does not slow as the fleet fills.
  std::sort(results.fill_done_ns.begin(), results.fill_done_ns.end());
  json per_thousand = json::array();
  for (size_t k = 1000; k <= results.fill_done_ns.size(); k += 1000) {
    const double span =
        double(results.fill_done_ns[k - 1] - (k == 1000 ? fill_start : results.fill_done_ns[k - 1001])) *
        1e-9;
    per_thousand.push_back(std::round(1000.0 / span));
  }
  uint64_t server_errors = 0;
  json kinds = json::object();
  std::printf(
      "fleet_bench: %d nodes, %d sessions, %d users, %d replica(s)%s on one PostgreSQL; %s; pgbench TPS "
      "%.0f\n",
      o.nodes, o.sessions, o.users, o.replicas,
      o.replica_cpus > 0 ? (" of " + cores_text(o.replica_cpus) + " cores each").c_str() : "",
      o.rate > 0 ? ("offered " + std::to_string(int(o.rate)) + " creations/s").c_str() : "closed loop", tps);
  std::printf("| request | count | p50 ms | p99 ms | statuses |\n|---|---|---|---|---|\n");
  for (auto& [kind, samples] : results.latency_ms) {
    std::string statuses;
    for (const auto& [code, n] : results.status[kind]) {
      statuses += (statuses.empty() ? "" : ", ") + std::to_string(code) + ": " + std::to_string(n);
      if (code >= 500 || code == 0) server_errors += n;
    }
    std::printf("| %s | %zu | %.1f | %.1f | %s |\n", kind.c_str(), samples.size(),
                kairo::percentile(samples, 0.5), kairo::percentile(samples, 0.99), statuses.c_str());
    kinds[kind] = {{"count", samples.size()},
                   {"p50_ms", kairo::percentile(samples, 0.5)},
                   {"p99_ms", kairo::percentile(samples, 0.99)}};
  }
  const double fill_rate = double(o.sessions) / fill_s, churn_rate = double(churned) / churn_elapsed;
  std::printf(
      "placement: %d sessions in %.1f s = %.0f /s (per thousand placed: %s); churn %.0f ends+creates /s\n",
      o.sessions, fill_s, fill_rate, per_thousand.dump().c_str(), churn_rate);
  std::printf(
      "session reached its node (from its creation request's start): p50 %.1f ms, p99 %.1f ms (%zu)\n",
      kairo::percentile(results.reach_ms, 0.5), kairo::percentile(results.reach_ms, 0.99),
      results.reach_ms.size());
  std::printf(
      "feed answers past their wait: p99 %.1f ms; placement conflicts %.0f of %.0f placements; notification "
      "lag mean %.2f ms; 5xx and failed requests: %llu\n",
      kairo::percentile(results.hold_overshoot_ms, 0.99), conflicts, placements,
      lag_count > 0 ? lag_sum / lag_count * 1e3 : 0.0, static_cast<unsigned long long>(server_errors));
  std::printf("changed feeds answered from memory %.0f, read from the database %.0f\n", feeds_from_memory,
              feeds_read);
  std::printf("placements/s per pgbench TPS: %.3f\n", tps > 0 ? fill_rate / tps : 0.0);
  std::printf("replicas' CPU over the fill: %.2f cores in all, %.0f placements per replica CPU-second\n",
              fill_cpu / fill_s, fill_cpu > 0 ? double(o.sessions) / fill_cpu : 0.0);
  std::printf(
      "CPU over the churn (cores; the machine has %u): replicas %.2f, PostgreSQL %.2f, this bench %.2f\n",
      std::thread::hardware_concurrency(), churn_cpu[0] / churn_elapsed, churn_cpu[1] / churn_elapsed,
      churn_cpu[2] / churn_elapsed);
  std::printf("sessions rows updated over the churn: %.0f, of which HOT %.0f (%.0f %%)\n",
              churn_updates.updates, churn_updates.hot,
              churn_updates.updates > 0 ? 100.0 * churn_updates.hot / churn_updates.updates : 0.0);
  if (!o.json_file.empty()) {
    std::ofstream out(o.json_file);
    out << json{{"nodes", o.nodes},
                {"sessions", o.sessions},
                {"users", o.users},
                {"replicas", o.replicas},
                {"replica_cpus", o.replica_cpus},
                {"replicas_cores_during_fill", fill_cpu / fill_s},
                {"cores_during_churn",
                 {{"replicas", churn_cpu[0] / churn_elapsed},
                  {"postgresql", churn_cpu[1] / churn_elapsed},
                  {"bench", churn_cpu[2] / churn_elapsed}}},
                {"session_updates_during_churn",
                 {{"all", churn_updates.updates}, {"hot", churn_updates.hot}}},
                {"offered_rate", o.rate},
                {"pgbench_tps", tps},
                {"placement_per_s", fill_rate},
                {"placement_per_s_per_thousand", per_thousand},
                {"churn_per_s", churn_rate},
                {"reach_ms",
                 {{"p50", kairo::percentile(results.reach_ms, 0.5)},
                  {"p99", kairo::percentile(results.reach_ms, 0.99)}}},
                {"requests", kinds},
                {"server_errors", server_errors},
                {"feeds_from_memory", feeds_from_memory},
                {"feeds_read", feeds_read},
                {"placement_conflicts", conflicts}}
               .dump(2);
  }
  if (!o.trace_file.empty()) {
    std::ofstream out(o.trace_file);
    const auto ms = [&](int64_t ns) { return std::round(double(ns - fill_start) * 1e-3) * 1e-3; };
    for (const Results::Traced& t : results.trace)
      out << json{{"kind", t.kind},
                  {"status", t.status},
                  {"scheduled_ms", ms(t.scheduled_ns)},
                  {"sent_ms", ms(t.sent_ns)},
                  {"done_ms", ms(t.done_ns)}}
                 .dump()
          << "\n";
  }
  std::filesystem::remove_all(logs);
  return server_errors == 0 ? 0 : 1;
}
