// HTTPS end to end: `kairo control`'s server with a certificate, the client library verifying it (CA file,
// host name), and refusing what it must refuse. The certificate is made here with OpenSSL's API (no
// openssl command needed).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "control-plane/http_client.hpp"
#include "control-plane/http_server.hpp"
#include "core/error.hpp"
#include "tests/test_certificate.hpp"

namespace kairo::control {
namespace {

using test::write_certificate;

TEST(Tls, the_api_over_https_is_verified_and_plain_or_unverified_connections_fail) {
  const auto dir = std::filesystem::temp_directory_path() / ("kairo-tls-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  write_certificate(dir / "cert.pem", dir / "key.pem", "DNS:localhost,IP:127.0.0.1");
  HttpServer server(HttpServerOptions{.listen = "127.0.0.1:0",
                                      .threads = 1,
                                      .body_limit = 1024,
                                      .tls_cert_file = (dir / "cert.pem").string(),
                                      .tls_key_file = (dir / "key.pem").string()},
                    [](const HttpRequest& r) {
                      return HttpResponse{200, R"({"path":")" + r.path + "\"}", "application/json"};
                    });
  ASSERT_TRUE(server.tls());
  const std::string port = std::to_string(server.port());
  const HttpClientOptions trusting{.timeout_s = 5, .ca_file = (dir / "cert.pem").string()};

  // Verified against the CA file, by IP and by name.
  for (const char* host : {"https://127.0.0.1:", "https://localhost:"}) {
    const auto r = http_request(parse_control_url(host + port), "GET", "/healthz", "", "", trusting);
    EXPECT_EQ(r.status, 200) << host;
    EXPECT_EQ(r.body, R"({"path":"/healthz"})");
  }
  // Not trusted (the system store does not know this certificate): refused.
  EXPECT_THROW(http_request(parse_control_url("https://127.0.0.1:" + port), "GET", "/healthz", "", "",
                            HttpClientOptions{.timeout_s = 5, .ca_file = {}}),
               kairo::Error);
  // Plain HTTP to the TLS port gets no answer.
  EXPECT_THROW(http_request(parse_control_url("http://127.0.0.1:" + port), "GET", "/healthz", "", "",
                            HttpClientOptions{.timeout_s = 3, .ca_file = {}}),
               kairo::Error);
  // A certificate for another name is refused even when its CA is trusted.
  write_certificate(dir / "other.pem", dir / "other-key.pem", "DNS:elsewhere.example");
  HttpServer other(HttpServerOptions{.listen = "127.0.0.1:0",
                                     .threads = 1,
                                     .body_limit = 1024,
                                     .tls_cert_file = (dir / "other.pem").string(),
                                     .tls_key_file = (dir / "other-key.pem").string()},
                   [](const HttpRequest&) {
                     return HttpResponse{200, "{}", "application/json"};
                   });
  EXPECT_THROW(
      http_request(parse_control_url("https://127.0.0.1:" + std::to_string(other.port())), "GET", "/healthz",
                   "", "", HttpClientOptions{.timeout_s = 5, .ca_file = (dir / "other.pem").string()}),
      kairo::Error);
  std::filesystem::remove_all(dir);
}

// A TLS handshake offering only `ciphers` (TLS 1.2) or TLS 1.3 (ciphers empty). Returns the negotiated
// suite, or "" when the server refused.
std::string handshake(uint16_t port, const std::string& ciphers) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_security_level(ctx, 0);  // let the client offer what an attacker's client would
  if (ciphers.empty()) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  } else {
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(ctx, ciphers.c_str());
  }
  BIO* bio = BIO_new_ssl_connect(ctx);
  BIO_set_conn_hostname(bio, ("127.0.0.1:" + std::to_string(port)).c_str());
  std::string suite;
  if (BIO_do_connect(bio) == 1 && BIO_do_handshake(bio) == 1) {
    SSL* ssl = nullptr;
    BIO_get_ssl(bio, &ssl);
    suite = SSL_get_cipher_name(ssl);
  }
  BIO_free_all(bio);
  SSL_CTX_free(ctx);
  return suite;
}

TEST(Tls, only_forward_secret_aead_suites_and_tls13_are_accepted) {
  const auto dir = std::filesystem::temp_directory_path() / ("kairo-tls-rsa-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  // An RSA certificate: with it a server could agree to static-RSA key exchange, which must be refused.
  write_certificate(dir / "cert.pem", dir / "key.pem", "IP:127.0.0.1", true);
  HttpServer server(HttpServerOptions{.listen = "127.0.0.1:0",
                                      .threads = 1,
                                      .body_limit = 1024,
                                      .tls_cert_file = (dir / "cert.pem").string(),
                                      .tls_key_file = (dir / "key.pem").string()},
                    [](const HttpRequest&) {
                      return HttpResponse{200, "{}", "application/json"};
                    });
  for (const char* refused : {"AES128-SHA", "AES256-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384",
                              "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384", "DHE-RSA-AES128-GCM-SHA256"})
    EXPECT_EQ(handshake(server.port(), refused), "") << refused;
  EXPECT_EQ(handshake(server.port(), "ECDHE-RSA-AES128-GCM-SHA256"), "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(handshake(server.port(), "ECDHE-RSA-CHACHA20-POLY1305"), "ECDHE-RSA-CHACHA20-POLY1305");
  EXPECT_EQ(handshake(server.port(), ""), "TLS_AES_256_GCM_SHA384");
  std::filesystem::remove_all(dir);
}

TEST(Tls, control_urls_are_parsed_or_refused_clearly) {
  EXPECT_EQ(parse_control_url("https://example.org").port, "443");
  EXPECT_EQ(parse_control_url("http://[::1]:8080/api/").prefix, "/api");
  EXPECT_EQ(parse_control_url("http://[::1]:8080/api/").host, "::1");
  EXPECT_THROW(parse_control_url("ftp://x"), kairo::Error);
  EXPECT_THROW(parse_control_url("http://:80"), kairo::Error);
  EXPECT_THROW(parse_control_url("http://host:99999"), kairo::Error);
}

}  // namespace
}  // namespace kairo::control
