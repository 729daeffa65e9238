#pragma once
// Systematic Reed-Solomon erasure coding over GF(2^8) with Intel ISA-L (SIMD): k data shards, m parity
// shards, any k of the k+m recover the data. Cauchy generator matrix, so every k x k submatrix is invertible.
// Working memory is per thread and sized for the maximum (255 shards): no allocation per frame.
#include <cstddef>
#include <cstdint>

namespace kairo {

constexpr int kMaxShards = 255;

// data[k] -> parity[m], each `bytes` long.
void rs_encode(int k, int m, size_t bytes, const uint8_t* const* data, uint8_t* const* parity);

// shards[k + m], `present[i]` says which arrived. Rebuilds the missing data shards in place (their buffers
// must exist). Returns false, touching nothing, if fewer than k shards are present.
bool rs_reconstruct(int k, int m, size_t bytes, uint8_t* const* shards, const bool* present);

}  // namespace kairo
