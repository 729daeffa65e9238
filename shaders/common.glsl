// Shared between scene.vert and scene.frag: the per-frame uniform block, one view per multiview layer.
layout(set = 0, binding = 0) uniform FrameUniforms {
  mat4 view_projection[2];
  vec4 eye_position[2];
  vec4 light_direction;  // xyz: unit vector towards the light; w: unused
  vec4 light_color;      // rgb: radiance
  vec4 sky_color;        // hemisphere ambient, from above
  vec4 ground_color;     // hemisphere ambient, from below
} frame;

layout(push_constant) uniform DrawConstants {
  mat4 model;
  mat4 normal_matrix;  // inverse-transpose of model's upper 3x3, padded to mat4 for std430-free alignment
} draw;
