#version 450
// Stereo RGBA (two array layers, sRGB-encoded) -> NV12, BT.709 limited range, straight into the readback
// buffer the encoder reads. One invocation converts a 4x2 pixel block: two 32-bit words of luma and one of
// interleaved CbCr (4:2:0, each chroma sample the average of its 2x2 block), so no byte-level atomics are needed.
layout(local_size_x = 8, local_size_y = 8, local_size_z = 1) in;

layout(set = 0, binding = 0, rgba8) uniform readonly image2DArray stereo_color;
layout(set = 0, binding = 1, std430) writeonly buffer Nv12Output { uint words[]; } nv12;

// Byte layout of the destination, so that it can be the renderer's readback buffer (tightly packed) or memory
// the encoder owns (a VA-API surface exported as DRM PRIME, with the driver's pitches and plane offsets).
// Foveated variant (a specialization constant, so that lavapipe compiles each variant once rather than
// branching on a uniform): each output pixel samples the rendered eye through the piecewise-linear warp of
// core/foveation.hpp, bilinearly.
layout(constant_id = 0) const bool FOVEATED = false;

layout(push_constant) uniform Params {
  uint eye_width;       // output (coded) size of one eye
  uint eye_height;
  uint per_eye;         // 0: one picture 2W x H, eyes side by side; 1: one W x H picture per eye
  uint y_offset;        // bytes from the picture's start to its luma plane (multiples of 4)
  uint y_pitch;         // bytes per luma row (multiple of 4)
  uint uv_offset;       // bytes from the picture's start to its interleaved chroma plane
  uint uv_pitch;        // bytes per chroma row
  uint picture_stride;  // bytes from one eye's picture to the next (per-eye layout)
  uint source_width;    // rendered size of one eye (FOVEATED only)
  uint source_height;
  uint pad0;
  uint pad1;
  vec4 warp[4];  // [eye * 2 + axis]: source fovea (a, b) and where it lands in the coded picture (ca, cb)
} params;

float coded_to_source(vec4 w, float u) {
  if (u < w.z) return -1.0 + (u + 1.0) * (w.x + 1.0) / max(1e-6, w.z + 1.0);
  if (u <= w.w) return w.x + (u - w.z) * (w.y - w.x) / max(1e-6, w.w - w.z);
  return w.y + (u - w.w) * (1.0 - w.y) / max(1e-6, 1.0 - w.w);
}

vec3 load_clamped(ivec2 p, uint eye) {
  p = clamp(p, ivec2(0), ivec2(params.source_width, params.source_height) - 1);
  return imageLoad(stereo_color, ivec3(p, eye)).rgb;
}

vec3 sample_eye(uint x, uint y, uint eye) {
  if (!FOVEATED) return imageLoad(stereo_color, ivec3(x, y, eye)).rgb;
  vec2 u = (vec2(x, y) + 0.5) / vec2(params.eye_width, params.eye_height) * 2.0 - 1.0;
  vec2 s = vec2(coded_to_source(params.warp[eye * 2u], u.x), coded_to_source(params.warp[eye * 2u + 1u], u.y));
  vec2 p = (s + 1.0) * 0.5 * vec2(params.source_width, params.source_height) - 0.5;
  ivec2 i = ivec2(floor(p));
  vec2 f = p - vec2(i);
  vec3 top = mix(load_clamped(i, eye), load_clamped(i + ivec2(1, 0), eye), f.x);
  vec3 bottom = mix(load_clamped(i + ivec2(0, 1), eye), load_clamped(i + ivec2(1, 1), eye), f.x);
  return mix(top, bottom, f.y);
}

vec3 rgb_to_ycbcr709(vec3 rgb) {
  float y = dot(rgb, vec3(0.2126, 0.7152, 0.0722));
  return vec3(16.0 + 219.0 * y, 128.0 + 224.0 * (rgb.b - y) / 1.8556, 128.0 + 224.0 * (rgb.r - y) / 1.5748);
}

uint pack4(vec4 v) {
  uvec4 b = uvec4(clamp(round(v), 0.0, 255.0));
  return b.x | (b.y << 8) | (b.z << 16) | (b.w << 24);
}

void main() {
  uint picture_width = params.per_eye == 1u ? params.eye_width : 2u * params.eye_width;
  uint pictures_x = picture_width / 4u;
  uvec3 id = gl_GlobalInvocationID;
  if (id.x >= pictures_x || id.y >= params.eye_height / 2u) return;

  uint x0 = id.x * 4u;  // in the picture
  uint y0 = id.y * 2u;
  uint eye = params.per_eye == 1u ? id.z : x0 / params.eye_width;
  uint local_x = params.per_eye == 1u ? x0 : x0 % params.eye_width;
  uint base = params.per_eye == 1u ? eye * params.picture_stride : 0u;

  vec4 luma[2];
  vec2 chroma[2] = vec2[2](vec2(0.0), vec2(0.0));
  for (uint row = 0u; row < 2u; ++row) {
    for (uint col = 0u; col < 4u; ++col) {
      vec3 rgb = sample_eye(local_x + col, y0 + row, eye);
      vec3 ycc = rgb_to_ycbcr709(rgb);
      luma[row][col] = ycc.x;
      chroma[col / 2u] += ycc.yz * 0.25;
    }
  }
  uint y_row0 = (base + params.y_offset + y0 * params.y_pitch + x0) / 4u;
  nv12.words[y_row0] = pack4(luma[0]);
  nv12.words[y_row0 + params.y_pitch / 4u] = pack4(luma[1]);
  uint uv = (base + params.uv_offset + id.y * params.uv_pitch + x0) / 4u;
  nv12.words[uv] = pack4(vec4(chroma[0], chroma[1]));
}
