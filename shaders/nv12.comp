#version 450
// Stereo RGBA (two array layers, sRGB-encoded) -> NV12, BT.709 limited range, straight into the readback
// buffer the encoder reads. One invocation converts a 4x2 pixel block: two 32-bit words of luma and one of
// interleaved CbCr (4:2:0, each chroma sample the average of its 2x2 block), so no byte-level atomics are needed.
layout(local_size_x = 8, local_size_y = 8, local_size_z = 1) in;

layout(set = 0, binding = 0, rgba8) uniform readonly image2DArray stereo_color;
layout(set = 0, binding = 1, std430) writeonly buffer Nv12Output { uint words[]; } nv12;

// Byte layout of the destination, so that it can be the renderer's readback buffer (tightly packed) or memory
// the encoder owns (a VA-API surface exported as DRM PRIME, with the driver's pitches and plane offsets).
layout(push_constant) uniform Params {
  uint eye_width;
  uint eye_height;
  uint per_eye;         // 0: one picture 2W x H, eyes side by side; 1: one W x H picture per eye
  uint y_offset;        // bytes from the picture's start to its luma plane (multiples of 4)
  uint y_pitch;         // bytes per luma row (multiple of 4)
  uint uv_offset;       // bytes from the picture's start to its interleaved chroma plane
  uint uv_pitch;        // bytes per chroma row
  uint picture_stride;  // bytes from one eye's picture to the next (per-eye layout)
} params;

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
      vec3 rgb = imageLoad(stereo_color, ivec3(local_x + col, y0 + row, eye)).rgb;
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
