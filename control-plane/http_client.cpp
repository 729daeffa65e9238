#include "control-plane/http_client.hpp"

#include <algorithm>
#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <openssl/ssl.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/error.hpp"

namespace kairo::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

ControlUrl parse_control_url(const std::string& url) {
  ControlUrl out;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    out.tls = true;
    rest = url.substr(8);
  } else {
    throw_invalid_input("control URL must start with http:// or https://: " + url);
  }
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) out.prefix = rest.substr(slash);
  while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) throw_invalid_input("control URL has an unclosed [IPv6] host: " + url);
    out.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') out.port = authority.substr(close + 2);
  } else {
    const size_t colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) out.port = authority.substr(colon + 1);
  }
  if (out.host.empty()) throw_invalid_input("control URL has no host: " + url);
  if (out.port.empty()) out.port = out.tls ? "443" : "80";
  if (out.port.find_first_not_of("0123456789") != std::string::npos || out.port.size() > 5 ||
      std::stoi(out.port) < 1 || std::stoi(out.port) > 65535)
    throw_invalid_input("control URL has an invalid port: " + url);
  return out;
}

namespace {

template <typename Stream>
HttpResult exchange(Stream& stream, const ControlUrl& url, const std::string& method,
                    const std::string& target, const std::string& body, const std::string& bearer,
                    const HttpClientOptions& options) {
  http::request<http::string_body> request(http::string_to_verb(method), url.prefix + target, 11);
  request.set(http::field::host, url.host);
  request.set(http::field::content_type, options.content_type);
  if (!bearer.empty()) request.set(http::field::authorization, "Bearer " + bearer);
  request.body() = body;
  request.prepare_payload();
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(options.max_response_bytes);
  http::read(stream, buffer, parser);
  const auto& response = parser.get();
  HttpResult result{
      int(response.result_int()), response.body(), std::string(response[http::field::content_type]), {}};
  for (const auto& field : response) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    result.headers[name] = std::string(field.value());
  }
  return result;
}

}  // namespace

HttpResult http_request(const ControlUrl& url, const std::string& method, const std::string& target,
                        const std::string& body, const std::string& bearer,
                        const HttpClientOptions& options) {
  const auto timeout = std::chrono::milliseconds(int64_t(options.timeout_s * 1000));
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    const auto endpoints = resolver.resolve(url.host, url.port);
    if (!url.tls) {
      beast::tcp_stream stream(io);
      stream.expires_after(timeout);
      stream.connect(endpoints);
      HttpResult result = exchange(stream, url, method, target, body, bearer, options);
      beast::error_code ignored;
      stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      return result;
    }
    asio::ssl::context tls(asio::ssl::context::tls_client);
    tls.set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                    asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (options.ca_file.empty())
      tls.set_default_verify_paths();
    else
      tls.load_verify_file(options.ca_file);
    tls.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(io, tls);
    // SNI and host name verification: a certificate for another name is refused.
    if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str()))
      throw_runtime("cannot set TLS server name " + url.host);
    stream.set_verify_callback(asio::ssl::rfc2818_verification(url.host));
    beast::get_lowest_layer(stream).expires_after(timeout);
    beast::get_lowest_layer(stream).connect(endpoints);
    stream.handshake(asio::ssl::stream_base::client);
    HttpResult result = exchange(stream, url, method, target, body, bearer, options);
    beast::error_code ignored;
    stream.shutdown(ignored);
    return result;
  } catch (const kairo::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw_runtime("control plane " + url.host + ":" + url.port + " " + method + " " + target + ": " +
                  e.what());
  }
}

HttpResult http_request(int port, const std::string& method, const std::string& target,
                        const std::string& body, const std::string& bearer) {
  return http_request(
      ControlUrl{.tls = false, .host = "127.0.0.1", .port = std::to_string(port), .prefix = ""}, method,
      target, body, bearer, HttpClientOptions{.timeout_s = 30, .ca_file = {}});
}

}  // namespace kairo::control
