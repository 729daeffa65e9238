// HTTPS end to end: `kairo control`'s server with a certificate, the client library verifying it (CA file,
// host name), and refusing what it must refuse. The certificate is made here with OpenSSL's API (no
// openssl command needed).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "control-plane/http_client.hpp"
#include "control-plane/http_server.hpp"
#include "core/error.hpp"

namespace kairo::control {
namespace {

// A self-signed certificate for `names` (subjectAltName entries such as "DNS:localhost,IP:127.0.0.1").
void write_certificate(const std::filesystem::path& cert, const std::filesystem::path& key,
                       const char* names) {
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  ASSERT_NE(pkey, nullptr);
  X509* x509 = X509_new();
  X509_set_version(x509, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x509), 1);
  X509_gmtime_adj(X509_getm_notBefore(x509), -60);
  X509_gmtime_adj(X509_getm_notAfter(x509), 3600);
  X509_set_pubkey(x509, pkey);
  X509_NAME* name = X509_get_subject_name(x509);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("kairo test"),
                             -1, -1, 0);
  X509_set_issuer_name(x509, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x509, x509, nullptr, nullptr, 0);
  for (const auto& [nid, value] :
       {std::pair{NID_subject_alt_name, names}, std::pair{NID_basic_constraints, "CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(x509, ext, -1);
    X509_EXTENSION_free(ext);
  }
  ASSERT_GT(X509_sign(x509, pkey, EVP_sha256()), 0);
  FILE* f = std::fopen(cert.c_str(), "w");
  PEM_write_X509(f, x509);
  std::fclose(f);
  f = std::fopen(key.c_str(), "w");
  PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x509);
  EVP_PKEY_free(pkey);
}

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
