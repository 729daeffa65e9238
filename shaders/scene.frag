#version 450
#extension GL_EXT_multiview : require
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

// glTF 2.0 metallic-roughness material. Colour textures are sampled through sRGB views, so all maths is linear.
layout(set = 1, binding = 0) uniform MaterialUniforms {
  vec4 base_color_factor;
  vec4 emissive_factor;  // rgb
  vec4 params;           // x: metallic, y: roughness, z: normal scale, w: occlusion strength
  vec4 alpha;            // x: alpha cutoff; -1 for opaque materials (never discards)
} material;
layout(set = 1, binding = 1) uniform sampler2D base_color_map;
layout(set = 1, binding = 2) uniform sampler2D normal_map;
layout(set = 1, binding = 3) uniform sampler2D metallic_roughness_map;
layout(set = 1, binding = 4) uniform sampler2D occlusion_map;
layout(set = 1, binding = 5) uniform sampler2D emissive_map;

// Which maps the material has (bit i: TextureSlot i, renderer/scene_data.hpp), set per pipeline: a material
// without a map neither samples the 1x1 default bound in its place nor does that map's maths. On lavapipe the
// texture samples were two thirds of a frame, and most surfaces have a base colour map only.
layout(constant_id = 0) const bool kBaseColorMap = true;
layout(constant_id = 1) const bool kNormalMap = true;
layout(constant_id = 2) const bool kMetallicRoughnessMap = true;
layout(constant_id = 3) const bool kOcclusionMap = true;
layout(constant_id = 4) const bool kEmissiveMap = true;

layout(location = 0) in vec3 in_world_position;
layout(location = 1) in vec3 in_normal;
layout(location = 2) in vec2 in_uv;
layout(location = 3) in vec4 in_tangent;
layout(location = 0) out vec4 out_color;

const float PI = 3.14159265;

float distribution_ggx(float n_dot_h, float alpha) {
  float a2 = alpha * alpha;
  float d = n_dot_h * n_dot_h * (a2 - 1.0) + 1.0;
  return a2 / (PI * d * d);
}

float visibility_smith(float n_dot_v, float n_dot_l, float alpha) {
  float a2 = alpha * alpha;
  float gv = n_dot_l * sqrt(n_dot_v * n_dot_v * (1.0 - a2) + a2);
  float gl = n_dot_v * sqrt(n_dot_l * n_dot_l * (1.0 - a2) + a2);
  return 0.5 / max(gv + gl, 1e-5);
}

vec3 linear_to_srgb(vec3 c) {
  c = clamp(c, 0.0, 1.0);
  return mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, step(vec3(0.0031308), c));
}

void main() {
  vec4 base_color = material.base_color_factor;
  if (kBaseColorMap) base_color *= texture(base_color_map, in_uv);
  // No branch on a uniform alone: lavapipe recompiles shaders with such uniforms inlined (per draw).
  if (base_color.a < material.alpha.x) discard;

  vec3 normal = normalize(in_normal);
  if (!gl_FrontFacing) normal = -normal;  // double-sided surfaces light from the side we see
  if (kNormalMap && dot(in_tangent.xyz, in_tangent.xyz) > 1e-8) {
    vec3 tangent = normalize(in_tangent.xyz - normal * dot(normal, in_tangent.xyz));
    vec3 bitangent = cross(normal, tangent) * (in_tangent.w < 0.0 ? -1.0 : 1.0);
    vec3 n = texture(normal_map, in_uv).xyz * 2.0 - 1.0;
    n.xy *= material.params.z;
    normal = normalize(mat3(tangent, bitangent, normal) * n);
  }

  vec4 mr = kMetallicRoughnessMap ? texture(metallic_roughness_map, in_uv)  // glTF: roughness G, metallic B
                                  : vec4(1.0);
  float metallic = clamp(material.params.x * mr.b, 0.0, 1.0);
  float roughness = clamp(material.params.y * mr.g, 0.04, 1.0);
  float occlusion = kOcclusionMap ? mix(1.0, texture(occlusion_map, in_uv).r, material.params.w) : 1.0;

  vec3 view_dir = normalize(frame.eye_position[gl_ViewIndex].xyz - in_world_position);
  vec3 light_dir = frame.light_direction.xyz;
  vec3 half_dir = normalize(view_dir + light_dir);
  float n_dot_v = max(dot(normal, view_dir), 1e-4);
  float n_dot_l = max(dot(normal, light_dir), 0.0);
  float n_dot_h = max(dot(normal, half_dir), 0.0);
  float v_dot_h = max(dot(view_dir, half_dir), 0.0);

  vec3 f0 = mix(vec3(0.04), base_color.rgb, metallic);
  vec3 fresnel = f0 + (1.0 - f0) * pow(1.0 - v_dot_h, 5.0);
  float alpha = roughness * roughness;
  vec3 specular = fresnel * distribution_ggx(n_dot_h, alpha) * visibility_smith(n_dot_v, n_dot_l, alpha);
  vec3 diffuse = (1.0 - fresnel) * (1.0 - metallic) * base_color.rgb / PI;
  vec3 direct = (diffuse + specular) * frame.light_color.rgb * n_dot_l;

  vec3 ambient_light = mix(frame.ground_color.rgb, frame.sky_color.rgb, normal.y * 0.5 + 0.5);
  vec3 ambient = ambient_light * mix(base_color.rgb * (1.0 - metallic), f0, 0.25) * occlusion;
  vec3 emissive = material.emissive_factor.rgb;
  if (kEmissiveMap) emissive *= texture(emissive_map, in_uv).rgb;

  // The target is UNORM holding sRGB-encoded values: the NV12 pass needs gamma-encoded R'G'B' for BT.709.
  out_color = vec4(linear_to_srgb(direct + ambient + emissive), 1.0);
}
