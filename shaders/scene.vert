#version 450
#extension GL_EXT_multiview : require
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(location = 0) in vec3 in_position;
layout(location = 1) in vec3 in_normal;
layout(location = 2) in vec2 in_uv;
layout(location = 3) in vec4 in_tangent;

layout(location = 0) out vec3 out_world_position;
layout(location = 1) out vec3 out_normal;
layout(location = 2) out vec2 out_uv;
layout(location = 3) out vec4 out_tangent;

void main() {
  vec4 world = draw.model * vec4(in_position, 1.0);
  out_world_position = world.xyz;
  out_normal = mat3(draw.normal_matrix) * in_normal;
  out_tangent = vec4(mat3(draw.model) * in_tangent.xyz, in_tangent.w);
  out_uv = in_uv;
  gl_Position = frame.view_projection[gl_ViewIndex] * world;  // one draw, both eyes (VK_KHR_multiview)
}
