#include "control-plane/feed_announcement.hpp"

#include <sodium.h>

#include <cstring>
#include <vector>

namespace kairo::control {

namespace {

bool is_session_id(std::string_view text) {
  return !text.empty() && text.size() <= 64 &&
         text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string associated_data(int64_t node, int64_t version) {
  return "kairo node feed " + std::to_string(node) + " " + std::to_string(version);
}

constexpr auto kBase64 = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;

}  // namespace

FeedAnnouncementCodec::FeedAnnouncementCodec(const std::string& key) {
  if (sodium_init() < 0) return;
  if (key.size() == key_.size()) {
    std::memcpy(key_.data(), key.data(), key_.size());
    sealing_ = true;
  }
  randombytes_buf(nonce_prefix_.data(), nonce_prefix_.size());
}

std::string FeedAnnouncementCodec::encode(int64_t node, int64_t version, const FeedChange& change) const {
  if (!sealing_ || !is_session_id(change.session_id) || change.order_key.size() > 255) return {};
  const bool added = change.kind == FeedChange::Kind::kAdd;
  if (added && change.session.session_id() != change.session_id) return {};
  // [kind][order key length][order key][the session serialised, or for an end or a report its id]
  std::string plain{char(change.kind), char(added ? change.order_key.size() : 0)};
  if (added) {
    plain += change.order_key;
    if (!change.session.AppendToString(&plain)) return {};
  } else {
    plain += change.session_id;
  }
  std::vector<unsigned char> sealed(kNonceBytes + plain.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  std::memcpy(sealed.data(), nonce_prefix_.data(), nonce_prefix_.size());
  const uint64_t counter = nonce_counter_.fetch_add(1, std::memory_order_relaxed);
  std::memcpy(sealed.data() + nonce_prefix_.size(), &counter, sizeof counter);
  const std::string ad = associated_data(node, version);
  unsigned long long sealed_length = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(sealed.data() + kNonceBytes, &sealed_length,
                                             reinterpret_cast<const unsigned char*>(plain.data()),
                                             plain.size(), reinterpret_cast<const unsigned char*>(ad.data()),
                                             ad.size(), nullptr, sealed.data(), key_.data());
  sodium_memzero(plain.data(), plain.size());  // the session key
  const size_t total = kNonceBytes + size_t(sealed_length);
  if (1 + sodium_base64_ENCODED_LEN(total, kBase64) > kMaxEncoded) return {};
  std::string text(1 + sodium_base64_ENCODED_LEN(total, kBase64), '\0');
  text[0] = char(change.kind);
  sodium_bin2base64(text.data() + 1, text.size() - 1, sealed.data(), total, kBase64);
  text.resize(1 + std::strlen(text.c_str() + 1));
  return text;
}

std::optional<FeedChange> FeedAnnouncementCodec::decode(int64_t node, int64_t version,
                                                        std::string_view text) const {
  if (!sealing_ || text.size() < 2 || text.size() > kMaxEncoded) return std::nullopt;
  const char kind = text[0];
  if (kind != char(FeedChange::Kind::kAdd) && kind != char(FeedChange::Kind::kRemove) &&
      kind != char(FeedChange::Kind::kRunning))
    return std::nullopt;
  const std::string_view rest = text.substr(1);
  std::vector<unsigned char> sealed(rest.size());
  size_t sealed_length = 0;
  if (sodium_base642bin(sealed.data(), sealed.size(), rest.data(), rest.size(), nullptr, &sealed_length,
                        nullptr, kBase64) != 0 ||
      sealed_length < kNonceBytes + crypto_aead_xchacha20poly1305_ietf_ABYTES + 2)
    return std::nullopt;
  std::string plain(sealed_length - kNonceBytes - crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  const std::string ad = associated_data(node, version);
  unsigned long long plain_length = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plain.data()), &plain_length, nullptr, sealed.data() + kNonceBytes,
          sealed_length - kNonceBytes, reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
          sealed.data(), key_.data()) != 0)
    return std::nullopt;
  FeedChange change;
  change.kind = FeedChange::Kind(kind);
  const size_t key_length = size_t(static_cast<unsigned char>(plain[1]));
  bool parsed = plain[0] == kind && 2 + key_length <= plain.size();
  if (parsed && change.kind == FeedChange::Kind::kAdd) {
    parsed = change.session.ParseFromArray(plain.data() + 2 + key_length, int(plain.size() - 2 - key_length));
    change.order_key.assign(plain, 2, key_length);
    change.session_id = change.session.session_id();
  } else if (parsed) {
    parsed = key_length == 0;
    change.session_id.assign(plain, 2);
  }
  sodium_memzero(plain.data(), plain.size());
  if (!parsed || !is_session_id(change.session_id)) return std::nullopt;
  return change;
}

}  // namespace kairo::control
