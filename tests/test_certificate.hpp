#pragma once
// A self-signed certificate made with OpenSSL's API (no openssl command needed), for HTTPS and WSS tests.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <utility>

namespace kairo::test {

// A self-signed certificate for `names` (subjectAltName entries such as "DNS:localhost,IP:127.0.0.1").
inline void write_certificate(const std::filesystem::path& cert, const std::filesystem::path& key,
                              const char* names, bool rsa = false) {
  EVP_PKEY* pkey = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
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

}  // namespace kairo::test
