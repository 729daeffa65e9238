#include "streaming/reed_solomon.hpp"

#include <isa-l/erasure_code.h>

#include <array>
#include <memory>
#include <stdexcept>

namespace kairo {
namespace {

struct Workspace {
  std::array<uint8_t, kMaxShards * kMaxShards> encode_matrix;
  std::array<uint8_t, kMaxShards * kMaxShards> submatrix;
  std::array<uint8_t, kMaxShards * kMaxShards> inverse;
  std::array<uint8_t, kMaxShards * kMaxShards> decode_rows;
  std::array<uint8_t, 32 * kMaxShards * kMaxShards> tables;
};

Workspace& workspace() {
  thread_local auto w = std::make_unique<Workspace>();  // ~2 MiB, once per thread
  return *w;
}

void check(int k, int m) {
  if (k < 1 || m < 0 || k + m > kMaxShards)
    throw std::invalid_argument("Reed-Solomon: need 1 <= k and k + m <= 255");
}

}  // namespace

void rs_encode(int k, int m, size_t bytes, const uint8_t* const* data, uint8_t* const* parity) {
  check(k, m);
  if (m == 0) return;
  Workspace& w = workspace();
  gf_gen_cauchy1_matrix(w.encode_matrix.data(), k + m, k);
  ec_init_tables(k, m, &w.encode_matrix[size_t(k) * k], w.tables.data());
  ec_encode_data(int(bytes), k, m, w.tables.data(), const_cast<uint8_t**>(data),
                 const_cast<uint8_t**>(parity));
}

bool rs_reconstruct(int k, int m, size_t bytes, uint8_t* const* shards, const bool* present) {
  check(k, m);
  std::array<int, kMaxShards> sources{}, missing{};
  int source_count = 0, missing_count = 0;
  for (int i = 0; i < k + m && source_count < k; ++i)
    if (present[i]) sources[source_count++] = i;
  for (int i = 0; i < k; ++i)
    if (!present[i]) missing[missing_count++] = i;
  if (missing_count == 0) return true;
  if (source_count < k) return false;

  Workspace& w = workspace();
  gf_gen_cauchy1_matrix(w.encode_matrix.data(), k + m, k);
  for (int r = 0; r < k; ++r)
    for (int c = 0; c < k; ++c) w.submatrix[size_t(r) * k + c] = w.encode_matrix[size_t(sources[r]) * k + c];
  if (gf_invert_matrix(w.submatrix.data(), w.inverse.data(), k) < 0)
    return false;  // cannot happen for Cauchy
  for (int e = 0; e < missing_count; ++e)
    for (int c = 0; c < k; ++c) w.decode_rows[size_t(e) * k + c] = w.inverse[size_t(missing[e]) * k + c];
  std::array<uint8_t*, kMaxShards> in{}, out{};
  for (int i = 0; i < k; ++i) in[i] = shards[sources[i]];
  for (int e = 0; e < missing_count; ++e) out[e] = shards[missing[e]];
  ec_init_tables(k, missing_count, w.decode_rows.data(), w.tables.data());
  ec_encode_data(int(bytes), k, missing_count, w.tables.data(), in.data(), out.data());
  return true;
}

}  // namespace kairo
