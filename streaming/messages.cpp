#include "streaming/messages.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace kairo::wire {
namespace {

size_t fits(std::span<uint8_t> out, size_t n) {
  if (out.size() < n) throw std::length_error("message buffer too small");
  return n;
}

}  // namespace

size_t write(const PathMessage& m, std::span<uint8_t> out) {
  fits(out, PathMessage::kSize);
  std::copy(m.token.begin(), m.token.end(), out.begin());
  return PathMessage::kSize;
}

std::optional<PathMessage> read_path(std::span<const uint8_t> in) {
  if (in.size() != PathMessage::kSize) return std::nullopt;
  PathMessage m;
  std::copy(in.begin(), in.end(), m.token.begin());
  return m;
}

size_t write(const PoseMessage& m, std::span<uint8_t> out) {
  fits(out, PoseMessage::kSize);
  uint8_t* p = out.data();
  put_u64(p, m.pose_id);
  put_u64(p + 8, uint64_t(m.sample_time_ns));
  put_u64(p + 16, uint64_t(m.display_time_ns));
  for (int i = 0; i < 3; ++i) put_f32(p + 24 + 4 * i, m.position[i]);
  for (int i = 0; i < 4; ++i) put_f32(p + 36 + 4 * i, m.orientation[i]);
  return PoseMessage::kSize;
}

std::optional<PoseMessage> read_pose(std::span<const uint8_t> in) {
  if (in.size() != PoseMessage::kSize) return std::nullopt;
  const uint8_t* p = in.data();
  PoseMessage m{.pose_id = get_u64(p),
                .sample_time_ns = int64_t(get_u64(p + 8)),
                .display_time_ns = int64_t(get_u64(p + 16))};
  float norm = 0;
  for (int i = 0; i < 3; ++i) m.position[i] = get_f32(p + 24 + 4 * i);
  for (int i = 0; i < 4; ++i) {
    m.orientation[i] = get_f32(p + 36 + 4 * i);
    norm += m.orientation[i] * m.orientation[i];
  }
  for (float v : m.position)
    if (!std::isfinite(v) || std::abs(v) > 1e6f) return std::nullopt;
  if (!std::isfinite(norm) || norm < 1e-12f) return std::nullopt;
  return m;
}

size_t write(const PoseBatch& m, std::span<uint8_t> out) {
  if (m.count == 0 || m.count > PoseBatch::kMaxPoses)
    throw std::length_error("a pose batch holds 1 to 4 poses");
  fits(out, m.size());
  for (size_t i = 0; i < m.count; ++i) write(m.poses[i], out.subspan(i * PoseMessage::kSize));
  return m.size();
}

std::optional<PoseBatch> read_pose_batch(std::span<const uint8_t> in) {
  if (in.empty() || in.size() % PoseMessage::kSize != 0 ||
      in.size() > PoseBatch::kMaxPoses * PoseMessage::kSize)
    return std::nullopt;
  PoseBatch batch;
  batch.count = in.size() / PoseMessage::kSize;
  for (size_t i = 0; i < batch.count; ++i) {
    const auto pose = read_pose(in.subspan(i * PoseMessage::kSize, PoseMessage::kSize));
    if (!pose || (i > 0 && pose->pose_id <= batch.poses[i - 1].pose_id)) return std::nullopt;
    batch.poses[i] = *pose;
  }
  return batch;
}

size_t write(const NackMessage& m, std::span<uint8_t> out) {
  fits(out, m.size());
  uint8_t* p = out.data();
  put_u64(p, m.frame_id);
  p[8] = m.stream;
  p[9] = m.count;
  for (size_t i = 0; i < m.count; ++i) {
    p[10 + 2 * i] = m.fragments[i].first;
    p[11 + 2 * i] = m.fragments[i].second;
  }
  return m.size();
}

std::optional<NackMessage> read_nack(std::span<const uint8_t> in) {
  if (in.size() < 10) return std::nullopt;
  NackMessage m{.frame_id = get_u64(in.data()), .stream = in[8], .count = in[9]};
  if (m.count > m.fragments.size() || in.size() != m.size() || m.stream > 1) return std::nullopt;
  for (size_t i = 0; i < m.count; ++i) m.fragments[i] = {in[10 + 2 * i], in[11 + 2 * i]};
  return m;
}

size_t write(const ReportMessage& m, std::span<uint8_t> out) {
  fits(out, ReportMessage::kSize);
  uint8_t* p = out.data();
  put_u64(p, m.frames_delivered);
  put_u64(p + 8, m.frames_lost);
  put_u64(p + 16, m.frames_recovered);
  put_u64(p + 24, m.late_fragments);
  put_u64(p + 32, m.fragments_received);
  put_u64(p + 40, m.fragments_expected);
  put_u32(p + 48, m.jitter_us);
  put_f32(p + 52, m.delay_trend);
  put_f32(p + 56, m.decode_ms);
  put_u64(p + 60, m.estimated_bitrate_bps);
  put_u64(p + 68, m.received_bitrate_bps);
  put_u32(p + 76, m.loss_burst_mean_x100);
  put_u32(p + 80, m.rtt_us);
  put_u64(p + 84, m.link_capacity_bps);
  put_u32(p + 92, uint32_t(m.display_phase_error_us));
  put_u32(p + 96, m.loss_burst_p90);
  return ReportMessage::kSize;
}

std::optional<ReportMessage> read_report(std::span<const uint8_t> in) {
  if (in.size() != ReportMessage::kSize) return std::nullopt;
  const uint8_t* p = in.data();
  ReportMessage m{.frames_delivered = get_u64(p),
                  .frames_lost = get_u64(p + 8),
                  .frames_recovered = get_u64(p + 16),
                  .late_fragments = get_u64(p + 24),
                  .fragments_received = get_u64(p + 32),
                  .fragments_expected = get_u64(p + 40),
                  .jitter_us = get_u32(p + 48),
                  .delay_trend = get_f32(p + 52),
                  .decode_ms = get_f32(p + 56),
                  .estimated_bitrate_bps = get_u64(p + 60),
                  .received_bitrate_bps = get_u64(p + 68),
                  .loss_burst_mean_x100 = get_u32(p + 76),
                  .rtt_us = get_u32(p + 80),
                  .link_capacity_bps = get_u64(p + 84),
                  .display_phase_error_us = int32_t(get_u32(p + 92)),
                  .loss_burst_p90 = get_u32(p + 96)};
  if (!std::isfinite(m.delay_trend) || !std::isfinite(m.decode_ms) ||
      m.fragments_received > m.fragments_expected)
    return std::nullopt;
  return m;
}

size_t write(const PingMessage& m, std::span<uint8_t> out) {
  fits(out, PingMessage::kSize);
  put_u64(out.data(), uint64_t(m.client_send_ns));
  return PingMessage::kSize;
}
std::optional<PingMessage> read_ping(std::span<const uint8_t> in) {
  if (in.size() != PingMessage::kSize) return std::nullopt;
  return PingMessage{.client_send_ns = int64_t(get_u64(in.data()))};
}

size_t write(const PongMessage& m, std::span<uint8_t> out) {
  fits(out, PongMessage::kSize);
  put_u64(out.data(), uint64_t(m.client_send_ns));
  put_u64(out.data() + 8, uint64_t(m.server_receive_ns));
  put_u64(out.data() + 16, uint64_t(m.server_send_ns));
  put_u32(out.data() + 24, m.uplink_loss_ppm);
  put_u32(out.data() + 28, m.uplink_burst_mean_x100);
  return PongMessage::kSize;
}
std::optional<PongMessage> read_pong(std::span<const uint8_t> in) {
  if (in.size() != PongMessage::kSize) return std::nullopt;
  return PongMessage{.client_send_ns = int64_t(get_u64(in.data())),
                     .server_receive_ns = int64_t(get_u64(in.data() + 8)),
                     .server_send_ns = int64_t(get_u64(in.data() + 16)),
                     .uplink_loss_ppm = get_u32(in.data() + 24),
                     .uplink_burst_mean_x100 = get_u32(in.data() + 28)};
}

size_t write(const KeyframeRequestMessage& m, std::span<uint8_t> out) {
  fits(out, KeyframeRequestMessage::kSize);
  put_u64(out.data(), m.lost_frame_id);
  return KeyframeRequestMessage::kSize;
}
std::optional<KeyframeRequestMessage> read_keyframe_request(std::span<const uint8_t> in) {
  if (in.size() != KeyframeRequestMessage::kSize) return std::nullopt;
  return KeyframeRequestMessage{.lost_frame_id = get_u64(in.data())};
}

size_t write(const InputMessage& m, std::span<uint8_t> out) {
  fits(out, InputMessage::kSize);
  uint8_t* p = out.data();
  put_u64(p, uint64_t(m.time_ns));
  p[8] = m.device;
  p[9] = 0;
  put_u16(p + 10, m.control);
  put_f32(p + 12, m.value);
  return InputMessage::kSize;
}

std::optional<InputMessage> read_input(std::span<const uint8_t> in) {
  if (in.size() != InputMessage::kSize || in[8] > kGaze || in[9] != 0) return std::nullopt;
  InputMessage m{.time_ns = int64_t(get_u64(in.data())),
                 .device = in[8],
                 .control = get_u16(in.data() + 10),
                 .value = get_f32(in.data() + 12)};
  if (!std::isfinite(m.value) || std::abs(m.value) > 1e6f) return std::nullopt;
  return m;
}

}  // namespace kairo::wire
