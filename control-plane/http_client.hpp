#pragma once
// A small blocking HTTP/1.1 client (Boost.Beast) for talking to the control plane: the node agent, the
// reference client and the tests use it. One connection per request keeps it simple and robust across
// control-plane restarts; requests are rare (logins, heartbeats, session changes), never per frame.
#include <cstdint>
#include <map>
#include <string>

namespace kairo::control {

struct HttpResult {
  int status = 0;
  std::string body;
  std::string content_type;
  std::map<std::string, std::string> headers;  // by lower-case name
};

// http://HOST:PORT[/prefix] or https://HOST:PORT[/prefix]; IPv6 hosts in brackets.
struct ControlUrl {
  bool tls = false;
  std::string host;
  std::string port;
  std::string prefix;  // prepended to every target ("" or "/something")
};

// Throws kairo::Error (invalid input) naming what is wrong.
ControlUrl parse_control_url(const std::string& url);

struct HttpClientOptions {
  double timeout_s = 10;
  std::string ca_file{};  // HTTPS: trust this CA bundle instead of the system's
  std::string content_type = "application/json";
  uint64_t max_response_bytes = 16 << 20;  // a scene's bytes take more (the node's fetch)
};

// Throws kairo::Error (runtime) when the server cannot be reached or answers garbage; HTTP error statuses
// are results, not exceptions.
HttpResult http_request(const ControlUrl& url, const std::string& method, const std::string& target,
                        const std::string& body = "", const std::string& bearer = "",
                        const HttpClientOptions& options = {});

// Plain HTTP to 127.0.0.1:port (tests).
HttpResult http_request(int port, const std::string& method, const std::string& target,
                        const std::string& body = "", const std::string& bearer = "");

}  // namespace kairo::control
