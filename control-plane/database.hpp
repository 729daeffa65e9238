#pragma once
// The control plane's only store: PostgreSQL through libpqxx. A fixed pool of connections; a connection
// that broke (database restarted) is reopened on its next use, and a transaction that failed because of it
// is retried once on the fresh connection. Schema migrations (control-plane/migrations, embedded at build
// time) are applied at start under an advisory lock, so replicas starting together apply each one once.
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/connection>  // libpqxx 6 has no forward-declaration header; only control-plane files include this
#include <pqxx/nontransaction>
#include <pqxx/transaction>

namespace kairo::control {

// A statement PostgreSQL parses once per connection and, after a few runs, plans once: for the hot paths,
// where parsing and planning each statement anew took as long as running it (issue 14: under 400 placements a
// second, 13 of the database's 35 busy seconds in 30 were planning). Defined once, as a constant beside
// its use; prepared on a connection the first time it runs there (again on a reopened connection).
struct PreparedStatement {
  std::string name;  // unique per statement
  std::string sql;
};

// Runs `statement` with `args` on the transaction's connection, preparing it there first if needed (a map
// look-up when it already is).
template <class... Args>
pqxx::result exec_prepared(pqxx::transaction_base& w, const PreparedStatement& statement, Args&&... args) {
  w.conn().prepare(statement.name, statement.sql);
  return w.exec_prepared(statement.name, std::forward<Args>(args)...);
}

// Thrown (not a std::exception, so that no handler's catch-all turns it into an answer) by a database call
// on a thread that must not wait on the database: see Database::NoWaitingHere.
struct WouldWaitOnDatabase {};

class Database {
 public:
  // While one lives, database calls on this thread throw WouldWaitOnDatabase before taking a connection:
  // code that runs where it must not block (a network thread, the feed's timer thread) tries the work from
  // memory, and moves it to a thread that may wait when it needs the database.
  class NoWaitingHere {
   public:
    NoWaitingHere();
    ~NoWaitingHere();
    NoWaitingHere(const NoWaitingHere&) = delete;
    NoWaitingHere& operator=(const NoWaitingHere&) = delete;

   private:
    bool previous_;
  };

  Database(std::string url, int pool_size);
  ~Database();

  // Applies every migration not yet recorded in schema_migrations. Returns the schema version.
  int migrate();
  int schema_version();
  int expected_schema_version() const;

  // Runs `work` in a transaction on a pooled connection and commits. A connection failure (before the commit
  // was acknowledged) reopens the connection and runs `work` once more; other errors propagate.
  void transact(const std::function<void(pqxx::work&)>& work);
  // Runs `work` outside a transaction, each statement committed on its own (and seeing the database as of its
  // own start), without the BEGIN and COMMIT round trips: for the hot paths' reads whose statements need no
  // common snapshot, and single-statement writes (atomic by themselves). Run once more on a broken
  // connection like transact(), so `work` must be safe to repeat (reads, idempotent writes).
  void autocommit(const std::function<void(pqxx::transaction_base&)>& work);
  const std::string& url() const { return url_; }
  // Readiness: the database answers and the schema is current.
  bool ready();
  // A shared secret setting: the stored value, or `candidate` stored first if none (replicas agree).
  std::string shared_secret(const std::string& name, const std::string& candidate);

 private:
  struct Lease;
  template <class Transaction, class Work>
  void run(const Work& work);
  std::unique_ptr<pqxx::connection>& acquire(std::unique_lock<std::mutex>& lock, size_t& index);
  void release(size_t index);

  std::string url_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> connections_;
  std::vector<bool> busy_;
};

}  // namespace kairo::control
