#include "streaming/frame_metadata.hpp"

#include <cmath>
#include <cstring>

#include "streaming/wire.hpp"

namespace kairo {

namespace {

constexpr uint32_t kMagic = 0x3344'4D4B;  // "KMD3" (KMD2 had no repair, KMD1 no room version)
constexpr uint32_t kKeyframeFlag = 1, kRepairFlag = 2, kRefreshFlag = 4;

struct Writer {
  uint8_t* p;
  void u16(uint16_t v) { wire::put_u16(p, v), p += 2; }
  void u32(uint32_t v) { wire::put_u32(p, v), p += 4; }
  void u64(uint64_t v) { wire::put_u64(p, v), p += 8; }
  void f32(float v) { std::memcpy(p, &v, 4), p += 4; }
};

struct Reader {
  const uint8_t* p;
  bool finite = true;
  uint16_t u16() { return p += 2, wire::get_u16(p - 2); }
  uint32_t u32() { return p += 4, wire::get_u32(p - 4); }
  uint64_t u64() { return p += 8, wire::get_u64(p - 8); }
  float f32() {
    float v;
    std::memcpy(&v, p, 4);
    p += 4;
    finite = finite && std::isfinite(v);
    return v;
  }
};

}  // namespace

size_t write(const FrameMetadata& m, std::span<uint8_t> out) {
  if (out.size() < FrameMetadata::kSize) return 0;
  Writer w{out.data()};
  w.u32(kMagic);
  w.u64(m.frame_id);
  w.u64(m.pose_id);
  for (int64_t t : {m.pose_sample_ns, m.display_time_ns, m.pose_received_ns, m.render_start_ns,
                    m.render_end_ns, m.encode_start_ns, m.encode_end_ns})
    w.u64(uint64_t(t));
  for (const EyeView& eye : m.view) {
    for (int i = 0; i < 3; ++i) w.f32(eye.pose.position[i]);
    w.f32(eye.pose.orientation.x);
    w.f32(eye.pose.orientation.y);
    w.f32(eye.pose.orientation.z);
    w.f32(eye.pose.orientation.w);
    w.f32(eye.fov.left);
    w.f32(eye.fov.right);
    w.f32(eye.fov.up);
    w.f32(eye.fov.down);
  }
  w.u16(m.eye_width);
  w.u16(m.eye_height);
  w.u16(m.coded_width);
  w.u16(m.coded_height);
  w.f32(m.foveation.strength);
  for (const glm::vec2& c : m.foveation.centre) {
    w.f32(c.x);
    w.f32(c.y);
  }
  w.f32(m.foveation.fovea_radius);
  w.u32((m.keyframe ? kKeyframeFlag : 0) | (m.repairs_from ? kRepairFlag : 0) |
        (m.refreshed_from && !m.repairs_from ? kRefreshFlag : 0));
  w.u64(m.repairs_from.value_or(m.refreshed_from.value_or(0)));
  w.u64(m.room_version);
  return FrameMetadata::kSize;
}

std::optional<FrameMetadata> read_frame_metadata(std::span<const uint8_t> in) {
  if (in.size() < FrameMetadata::kSize) return std::nullopt;
  Reader r{in.data()};
  if (r.u32() != kMagic) return std::nullopt;
  FrameMetadata m;
  m.frame_id = r.u64();
  m.pose_id = r.u64();
  for (int64_t* t : {&m.pose_sample_ns, &m.display_time_ns, &m.pose_received_ns, &m.render_start_ns,
                     &m.render_end_ns, &m.encode_start_ns, &m.encode_end_ns})
    *t = int64_t(r.u64());
  for (EyeView& eye : m.view) {
    for (int i = 0; i < 3; ++i) eye.pose.position[i] = r.f32();
    eye.pose.orientation.x = r.f32();
    eye.pose.orientation.y = r.f32();
    eye.pose.orientation.z = r.f32();
    eye.pose.orientation.w = r.f32();
    eye.fov.left = r.f32();
    eye.fov.right = r.f32();
    eye.fov.up = r.f32();
    eye.fov.down = r.f32();
  }
  m.eye_width = r.u16();
  m.eye_height = r.u16();
  m.coded_width = r.u16();
  m.coded_height = r.u16();
  m.foveation.strength = r.f32();
  for (glm::vec2& c : m.foveation.centre) {
    c.x = r.f32();
    c.y = r.f32();
  }
  m.foveation.fovea_radius = r.f32();
  const uint32_t flags = r.u32();
  m.keyframe = (flags & kKeyframeFlag) != 0;
  const uint64_t recovery_id = r.u64();
  if ((flags & kRepairFlag) != 0) m.repairs_from = recovery_id;
  if ((flags & kRefreshFlag) != 0) m.refreshed_from = recovery_id;
  m.room_version = r.u64();
  if (!r.finite || flags > (kKeyframeFlag | kRepairFlag | kRefreshFlag)) return std::nullopt;
  // A repair predicts from frames before it, never from itself or later; a wave ends at or after its start.
  if (m.repairs_from && (*m.repairs_from >= m.frame_id || m.refreshed_from)) return std::nullopt;
  if (m.refreshed_from && *m.refreshed_from > m.frame_id) return std::nullopt;
  if (m.eye_width == 0 || m.eye_height == 0 || m.coded_width == 0 || m.coded_height == 0 ||
      m.coded_width > m.eye_width || m.coded_height > m.eye_height)
    return std::nullopt;
  if (m.foveation.strength < 0 || m.foveation.strength > 1 || m.foveation.fovea_radius <= 0 ||
      m.foveation.fovea_radius > 1)
    return std::nullopt;
  for (const glm::vec2& c : m.foveation.centre)
    if (std::abs(c.x) > 1 || std::abs(c.y) > 1) return std::nullopt;
  return m;
}

}  // namespace kairo
