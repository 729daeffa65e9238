#pragma once
// How Kairo's logs look: plain text lines (the default) or one JSON object per line (`--log-format json`,
// or KAIRO_LOG_FORMAT=json) with time, level, component, message and, where they apply, request_id,
// session_id and node_id: what a log pipeline (Loki, Elasticsearch) indexes, so that one session can be
// followed across the control plane's and its node's logs.
//
// The ids come from the thread's LogContext: code that works for one request or one session sets them for
// its scope (ScopedLogContext) and every line logged meanwhile on that thread carries them.
#include <cstdint>
#include <string>
#include <string_view>

namespace kairo {

struct LogContext {
  std::string request_id{}, session_id{};
  int64_t node_id = 0;  // 0: none
};

// This thread's context (empty by default).
LogContext& log_context();

// A request id as Kairo makes and accepts them (X-Request-Id, and what a node is handed with a session):
// 1 to 64 of [A-Za-z0-9._-], so that one can never forge a log line or a JSON field.
bool is_request_id(std::string_view id);

// Sets fields of this thread's context for a scope, restoring the previous ones after it.
class ScopedLogContext {
 public:
  explicit ScopedLogContext(LogContext fields);
  ~ScopedLogContext();
  ScopedLogContext(const ScopedLogContext&) = delete;
  ScopedLogContext& operator=(const ScopedLogContext&) = delete;

 private:
  LogContext saved_;
};

// "text" or "json" for the default logger, whose name is the component. Throws kairo::Error (invalid input)
// for another format.
void set_log_format(const std::string& format, const std::string& component);

// A line scripts read whatever the log level ("kairo control: ... listening on ... port N"): on stderr as
// "kairo <component>: <message>", or in the JSON format as an info line with that message.
void announce(const std::string& message);

}  // namespace kairo
