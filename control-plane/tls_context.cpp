#include "control-plane/tls_context.hpp"

#include <openssl/ssl.h>

#include "core/error.hpp"

namespace kairo::control {

namespace asio = boost::asio;

asio::ssl::context make_tls_server_context(const std::string& cert_file, const std::string& key_file) {
  if (cert_file.empty() || key_file.empty()) throw_invalid_input("TLS needs both a certificate and a key");
  asio::ssl::context tls(asio::ssl::context::tls_server);
  tls.set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                  asio::ssl::context::no_tlsv1_1 | asio::ssl::context::no_compression);
  // TLS 1.2 with forward secrecy and AEAD only (ECDHE with AES-GCM or ChaCha20-Poly1305): no static-RSA key
  // exchange, no CBC. TLS 1.3's suites are all of that kind already.
  SSL_CTX* native = tls.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  if (SSL_CTX_set_cipher_list(native, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1") != 1)
    throw_runtime("cannot set the TLS cipher list");
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE);
  boost::system::error_code error;
  tls.use_certificate_chain_file(cert_file, error);
  if (!error) tls.use_private_key_file(key_file, asio::ssl::context::pem, error);
  if (error) throw_invalid_input("cannot load the TLS certificate or key: " + error.message());
  return tls;
}

}  // namespace kairo::control
