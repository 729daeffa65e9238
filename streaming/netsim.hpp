#pragma once
// A userspace UDP impairment relay (the kernel's netem is not available on our machines): a client sends to
// `listen`, the relay forwards to `forward` and carries replies back, impairing both directions with random
// or bursty (Gilbert-Elliott) loss, delay, jitter, reordering, duplication and a rate limit with a bounded
// queue. Deterministic for a given seed and packet sequence. Several clients may share one relay, as the
// people of a room share one access point: each gets a flow of its own (an upstream socket, as a NAT would
// give it, so replies reach the client they are for), and all flows share the one impaired link.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace kairo {

struct ImpairmentConfig {
  double loss_percent = 0;     // long-run share of packets lost
  double burst_mean = 1;       // mean length of a loss burst (1: independent losses)
  double delay_ms = 0;         // one way
  double jitter_ms = 0;        // uniform +- around the delay
  double reorder_percent = 0;  // packets held back 1-5 ms more than their successors
  double duplicate_percent = 0;
  double rate_mbitps = 0;  // 0: unlimited
  double queue_ms = 100;   // the rate limiter's queue: packets that would wait longer are dropped
};

struct NetsimCounters {
  uint64_t received = 0, forwarded = 0, lost = 0, queue_dropped = 0, duplicated = 0, reordered = 0, bytes = 0;
};

class Netsim {
 public:
  // Binds `listen` ("HOST:PORT"; port 0 picks one). Throws kairo::Error on bad addresses.
  Netsim(const std::string& listen, const std::string& forward, const ImpairmentConfig& config,
         uint64_t seed);
  ~Netsim();
  uint16_t listen_port() const;
  void start();  // on a thread of its own
  void run();    // on the caller's thread, until stop()
  void stop();
  // Thread-safe: applies to both directions from the next packet on.
  void set_rate_mbitps(double rate);
  NetsimCounters counters(bool upstream) const;  // upstream: client -> forward
  std::string counters_json() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace kairo
