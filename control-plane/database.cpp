#include "control-plane/database.hpp"

#include <spdlog/spdlog.h>
#include <pqxx/pqxx>

#include "control-plane/migrations.hpp"
#include "core/error.hpp"

namespace kairo::control {
namespace {
constexpr long kMigrationLock = 0x6b6169726f;  // "kairo": one advisory lock id for schema changes
thread_local bool t_no_waiting = false;
}  // namespace

Database::NoWaitingHere::NoWaitingHere() : previous_(t_no_waiting) {
  t_no_waiting = true;
}

Database::NoWaitingHere::~NoWaitingHere() {
  t_no_waiting = previous_;
}

Database::Database(std::string url, int pool_size)
    : url_(std::move(url)), connections_(size_t(std::max(1, pool_size))), busy_(connections_.size(), false) {}

Database::~Database() = default;

std::unique_ptr<pqxx::connection>& Database::acquire(std::unique_lock<std::mutex>& lock, size_t& index) {
  available_.wait(lock, [this] {
    for (bool b : busy_)
      if (!b) return true;
    return false;
  });
  for (index = 0; busy_[index]; ++index) {
  }
  busy_[index] = true;
  return connections_[index];
}

void Database::release(size_t index) {
  {
    std::lock_guard lock(mutex_);
    busy_[index] = false;
  }
  available_.notify_one();
}

template <class Transaction, class Work>
void Database::run(const Work& work) {
  if (t_no_waiting) throw WouldWaitOnDatabase{};
  size_t index = 0;
  std::unique_ptr<pqxx::connection>* slot = nullptr;
  {
    std::unique_lock lock(mutex_);
    slot = &acquire(lock, index);
  }
  struct Release {
    Database* db;
    size_t index;
    ~Release() { db->release(index); }
  } release{this, index};
  for (int attempt = 0;; ++attempt) {
    try {
      if (!*slot || !(*slot)->is_open()) *slot = std::make_unique<pqxx::connection>(url_);
      Transaction transaction(**slot);
      work(transaction);
      transaction.commit();
      return;
    } catch (const pqxx::in_doubt_error&) {
      slot->reset();
      // The commit may or may not have happened: never run it twice. The caller answers 503 (unavailable)
      // like any database outage, not 500: it is no bug (found under ThreadSanitizer's slower timing, a
      // database restart under load answered one creation 500).
      throw_runtime("database connection lost while committing: the outcome is unknown");
    } catch (const pqxx::broken_connection& e) {
      slot->reset();
      if (attempt >= 1) throw_runtime(std::string("database unavailable: ") + e.what());
      spdlog::warn("database connection lost; reconnecting");
    } catch (const pqxx::sql_error& e) {
      // The server going away mid-transaction (class 57: shut down by an operator or a crash; class 08:
      // connection failures) is unavailability, like a broken connection: nothing was committed, the caller
      // gets a 503 and may retry. A serialisation failure or deadlock (40001, 40P01) is retried here.
      const std::string state = e.sqlstate();
      if (state.rfind("57", 0) == 0 || state.rfind("08", 0) == 0) {
        slot->reset();
        if (attempt >= 1) throw_runtime(std::string("database unavailable: ") + e.what());
        spdlog::warn("database shutting down or unreachable ({}); reconnecting", state);
        continue;
      }
      if ((state == "40001" || state == "40P01") && attempt < 3) continue;
      throw;
    }
  }
}

void Database::transact(const std::function<void(pqxx::work&)>& work) {
  run<pqxx::work>(work);
}

void Database::autocommit(const std::function<void(pqxx::transaction_base&)>& work) {
  run<pqxx::nontransaction>(work);
}

int Database::schema_version() {
  int version = 0;
  transact([&](pqxx::work& w) {
    const auto exists = w.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (!exists[0][0].as<bool>()) return;
    version = w.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
  });
  return version;
}

int Database::expected_schema_version() const {
  return int(migrations().size());
}

int Database::migrate() {
  // A dedicated session holds the advisory lock for the whole run: a second replica waits, then finds
  // every migration recorded and applies nothing.
  pqxx::connection c(url_);
  {
    pqxx::nontransaction lock(c);  // a session-level lock: it outlives this statement's transaction
    lock.exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLock) + ")");
  }
  int version = 0;
  try {
    pqxx::work setup(c);
    setup.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT "
        "NULL DEFAULT now())");
    version = setup.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
    setup.commit();
    const auto& all = migrations();
    for (int v = version + 1; v <= int(all.size()); ++v) {
      pqxx::work apply(c);
      apply.exec(all[size_t(v - 1)]);
      apply.exec("INSERT INTO schema_migrations (version) VALUES (" + std::to_string(v) + ")");
      apply.commit();
      spdlog::info("database: applied migration {}", v);
      version = v;
    }
  } catch (...) {
    pqxx::nontransaction unlock(c);
    unlock.exec("SELECT pg_advisory_unlock_all()");
    throw;
  }
  pqxx::nontransaction unlock(c);
  unlock.exec("SELECT pg_advisory_unlock_all()");
  return version;
}

std::string Database::shared_secret(const std::string& name, const std::string& candidate) {
  std::string value;
  transact([&](pqxx::work& w) {
    w.exec_params("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", name,
                  pqxx::binarystring(candidate.data(), candidate.size()));
    const auto row = w.exec_params("SELECT value FROM settings WHERE name = $1", name);
    const pqxx::binarystring stored(row[0][0]);
    value.assign(reinterpret_cast<const char*>(stored.data()), stored.size());
  });
  return value;
}

bool Database::ready() {
  try {
    return schema_version() == expected_schema_version();
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace kairo::control
