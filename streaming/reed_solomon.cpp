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
  // Systematic code: with e data shards missing, only an e x e system is left once the known data is
  // subtracted out of e parity equations. Inverting that (not the full k x k matrix) keeps decoding cheap:
  // e is a handful while k can be 64.
  std::array<int, kMaxShards> known{}, missing{}, parity{};
  int known_count = 0, missing_count = 0, parity_count = 0;
  for (int i = 0; i < k; ++i) (present[i] ? known[known_count++] : missing[missing_count++]) = i;
  if (missing_count == 0) return true;
  for (int j = 0; j < m && parity_count < missing_count; ++j)
    if (present[k + j]) parity[parity_count++] = j;
  if (parity_count < missing_count) return false;

  Workspace& w = workspace();
  const int e = missing_count;
  gf_gen_cauchy1_matrix(w.encode_matrix.data(), k + m, k);
  auto coefficient = [&](int parity_index, int data_index) {
    return w.encode_matrix[size_t(k + parity_index) * k + size_t(data_index)];
  };
  // A_sub[t][r] = coefficient of missing data r in parity equation t.
  for (int t = 0; t < e; ++t)
    for (int r = 0; r < e; ++r) w.submatrix[size_t(t) * e + r] = coefficient(parity[t], missing[r]);
  if (gf_invert_matrix(w.submatrix.data(), w.inverse.data(), e) < 0)
    return false;  // cannot happen for Cauchy
  // Sources: the e parity shards, then the k - e known data shards. Row r of the decode matrix rebuilds
  // missing data r: inv[r][t] on parity t, and sum_t inv[r][t] * A[parity t][i] on known data i.
  std::array<uint8_t*, kMaxShards> in{}, out{};
  for (int t = 0; t < e; ++t) in[t] = shards[k + parity[t]];
  for (int i = 0; i < known_count; ++i) in[e + i] = shards[known[i]];
  for (int r = 0; r < e; ++r) {
    uint8_t* row = &w.decode_rows[size_t(r) * k];
    for (int t = 0; t < e; ++t) row[t] = w.inverse[size_t(r) * e + t];
    for (int i = 0; i < known_count; ++i) {
      uint8_t sum = 0;
      for (int t = 0; t < e; ++t)
        sum ^= gf_mul(w.inverse[size_t(r) * e + t], coefficient(parity[t], known[i]));
      row[e + i] = sum;
    }
    out[r] = shards[missing[r]];
  }
  ec_init_tables(k, e, w.decode_rows.data(), w.tables.data());
  ec_encode_data(int(bytes), k, e, w.tables.data(), in.data(), out.data());
  return true;
}

}  // namespace kairo
