#include "core/log_format.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace kairo {

LogContext& log_context() {
  thread_local LogContext context;
  return context;
}

bool is_request_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 &&
         id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
             std::string_view::npos;
}

ScopedLogContext::ScopedLogContext(LogContext fields) : saved_(log_context()) {
  LogContext& now = log_context();
  if (!fields.request_id.empty()) now.request_id = std::move(fields.request_id);
  if (!fields.session_id.empty()) now.session_id = std::move(fields.session_id);
  if (fields.node_id != 0) now.node_id = fields.node_id;
}

ScopedLogContext::~ScopedLogContext() {
  log_context() = std::move(saved_);
}

namespace {

// One JSON object per line. The message is escaped by nlohmann::json (quotes, control characters, invalid
// UTF-8 replaced), so a line always parses whatever was logged.
class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(std::string component) : component_(std::move(component)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const std::time_t seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char time[32];
    const size_t n = std::strftime(time, sizeof(time), "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(time + n, sizeof(time) - n, ".%03dZ", int(millis));
    nlohmann::json line{{"time", time},
                        {"level", spdlog::level::to_string_view(msg.level).data()},
                        {"component", component_},
                        {"message", std::string(msg.payload.data(), msg.payload.size())}};
    const LogContext& context = log_context();
    if (!context.request_id.empty()) line["request_id"] = context.request_id;
    if (!context.session_id.empty()) line["session_id"] = context.session_id;
    if (context.node_id != 0) line["node_id"] = context.node_id;
    const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>(component_);
  }

 private:
  std::string component_;
};

}  // namespace

namespace {
std::string& current_format() {
  static std::string format = "text";
  return format;
}
std::string& current_component() {
  static std::string component = "kairo";
  return component;
}
}  // namespace

void announce(const std::string& message) {
  if (current_format() == "json") {
    JsonFormatter formatter(current_component());
    spdlog::memory_buf_t line;
    formatter.format(spdlog::details::log_msg(spdlog::source_loc{}, "", spdlog::level::info, message), line);
    std::fwrite(line.data(), 1, line.size(), stderr);
  } else {
    std::fprintf(stderr, "kairo %s: %s\n", current_component().c_str(), message.c_str());
  }
  std::fflush(stderr);
}

void set_log_format(const std::string& format, const std::string& component) {
  current_format() = format;
  current_component() = component;
  if (format == "json") {
    spdlog::set_formatter(std::make_unique<JsonFormatter>(component));
  } else if (format == "text") {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  } else {
    throw_invalid_input("--log-format must be text or json, got \"" + format + "\"");
  }
}

}  // namespace kairo
