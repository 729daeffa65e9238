// Transport CPU cost on one core: sender (packetize + Reed-Solomon parity + seal every datagram) and receiver
// (open every datagram + reassemble, with FEC recovery of the lost fragments), in Gbit/s of video.
//   build/bench/kairo_transport_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "streaming/datagram_crypto.hpp"
#include "streaming/fec_policy.hpp"
#include "streaming/frame_assembler.hpp"
#include "streaming/frame_packetizer.hpp"

namespace kairo {
namespace {

std::vector<uint8_t> frame_of(size_t bytes) {
  std::vector<uint8_t> f(bytes);
  std::mt19937 rng(1);
  for (auto& b : f) b = uint8_t(rng());
  return f;
}

void sender(benchmark::State& state) {
  const auto frame = frame_of(size_t(state.range(0)));
  const FecPolicy fec{.loss = double(state.range(1)) / 100.0};
  FramePacketizer packetizer;
  DatagramSealer sealer(SessionKey::random(), 1, wire::Direction::kServerToClient);
  std::array<uint8_t, wire::kMaxDatagram> out{};
  uint64_t id = 0, datagrams = 0;
  for (auto _ : state) {
    const int n = packetizer.packetize_with(FrameInfo{.frame_id = id++}, frame,
                                            [&](int k) { return fec.parity_for(k); });
    for (int i = 0; i < n; ++i)
      benchmark::DoNotOptimize(sealer.seal(wire::PacketType::kVideo, packetizer.fragment(i, 0), out));
    datagrams += uint64_t(n);
  }
  state.counters["video_Gbit/s"] = benchmark::Counter(
      double(frame.size()) * 8e-9 * double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["datagrams/frame"] = double(datagrams) / double(state.iterations());
}

void receiver(benchmark::State& state) {
  const auto frame = frame_of(size_t(state.range(0)));
  const double loss = double(state.range(1)) / 100.0;
  const FecPolicy fec{.loss = loss};
  const SessionKey key = SessionKey::random();
  FramePacketizer packetizer;
  DatagramSealer sealer(key, 1, wire::Direction::kServerToClient);
  // Pre-build a stream of sealed datagrams (with this loss applied) so only the receive side is timed.
  std::vector<std::vector<uint8_t>> stream;
  std::mt19937 rng(3);
  std::bernoulli_distribution lose(loss);
  const int frames = 64;
  for (int id = 0; id < frames; ++id) {
    const int n = packetizer.packetize_with(FrameInfo{.frame_id = uint64_t(id)}, frame,
                                            [&](int k) { return fec.parity_for(k); });
    for (int i = 0; i < n; ++i) {
      std::vector<uint8_t> d(wire::kMaxDatagram);
      d.resize(sealer.seal(wire::PacketType::kVideo, packetizer.fragment(i, 0), d));
      if (!lose(rng)) stream.push_back(std::move(d));
    }
  }
  std::array<uint8_t, wire::kMaxDatagram> plain{};
  uint64_t delivered = 0;
  for (auto _ : state) {
    // A fresh receiver per pass (the replay window would refuse a second pass); its set-up is not timed.
    state.PauseTiming();
    DatagramOpener opener(key, 1, wire::Direction::kServerToClient);
    FrameAssembler assembler(packetizer.fragment_body_bytes(), 1'000'000'000);
    state.ResumeTiming();
    for (const auto& d : stream) {
      wire::Header header;
      size_t size = 0;
      if (opener.open(d, header, plain, size) == OpenResult::kOk)
        assembler.add(std::span(plain.data(), size), 0);
      while (assembler.pop() != nullptr) ++delivered;
    }
  }
  state.counters["video_Gbit/s"] = benchmark::Counter(
      double(frame.size()) * 8e-9 * frames * double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["delivered_share"] = double(delivered) / double(frames * state.iterations());
}

BENCHMARK(sender)->Args({30'000, 0})->Args({30'000, 5})->Args({200'000, 5})->Unit(benchmark::kMicrosecond);
BENCHMARK(receiver)->Args({30'000, 0})->Args({30'000, 5})->Args({200'000, 5})->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kairo

BENCHMARK_MAIN();
