// @ts-check
// Draws the newest decoded frame per eye: undoes the node's foveation (the per-axis piecewise-linear warp,
// core/foveation.cpp, whose breakpoints arrive with each frame) and reprojects it from the pose it was rendered
// for to the current view. Reprojection is rotation only: each pixel's ray in the current view is turned into
// the rendered view's frame and looked up there. Translation since the render (a few millimetres at the
// latencies here) is not corrected: it would need depth, which the stream does not carry.
import { mat3TransposeMultiply, quatToMat3 } from './pose.js';

/** @typedef {import('./pose.js').Quat} Quat */
/** @typedef {{q: Quat, tan: [number, number, number, number]}} View  orientation and tan(left, right, up, down) */
/**
 * @typedef {{p: number[], q: number[], fov: number[], wx: number[], wy: number[]}} EyeMeta
 * @typedef {{t: string, rtp: number, id: number, pose_id: number, key: boolean, room: number, ts: number[],
 *   size: number[], eyes: EyeMeta[]}} FrameMeta
 */

const kVertex = `#version 300 es
out vec2 v_uv;
void main() {
  vec2 corner = vec2(gl_VertexID & 1, gl_VertexID >> 1);
  v_uv = vec2(corner.x, 1.0 - corner.y);  // y down, as image rows
  gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
}`;

const kFragment = `#version 300 es
precision highp float;
in vec2 v_uv;
uniform sampler2D u_video;
uniform mat3 u_current_to_rendered;
uniform vec4 u_current_tan;   // tan of the current view's left, right, up, down angles
uniform vec4 u_rendered_tan;  // the same for the view the frame was rendered with
uniform vec4 u_warp_x;        // a, b, coded_a, coded_b (core/foveation.hpp AxisWarp)
uniform vec4 u_warp_y;
uniform float u_eye;          // 0 left, 1 right: which half of the side-by-side picture
out vec4 color;

float source_to_coded(vec4 w, float x) {
  if (x < w.x) return -1.0 + (x + 1.0) * (w.z + 1.0) / max(1e-6, w.x + 1.0);
  if (x <= w.y) return w.z + (x - w.x) * (w.w - w.z) / max(1e-6, w.y - w.x);
  return w.w + (x - w.y) * (1.0 - w.w) / max(1e-6, 1.0 - w.y);
}

void main() {
  vec3 ray = vec3(mix(u_current_tan.x, u_current_tan.y, v_uv.x), mix(u_current_tan.z, u_current_tan.w, v_uv.y), -1.0);
  vec3 r = u_current_to_rendered * ray;
  if (r.z > -1e-4) { color = vec4(0.0, 0.0, 0.0, 1.0); return; }
  vec2 t = r.xy / -r.z;
  float u = (t.x - u_rendered_tan.x) / (u_rendered_tan.y - u_rendered_tan.x) * 2.0 - 1.0;
  float v = (u_rendered_tan.z - t.y) / (u_rendered_tan.z - u_rendered_tan.w) * 2.0 - 1.0;
  if (abs(u) > 1.0 || abs(v) > 1.0) { color = vec4(0.0, 0.0, 0.0, 1.0); return; }
  vec2 coded = vec2(source_to_coded(u_warp_x, u), source_to_coded(u_warp_y, v));
  color = texture(u_video, vec2((u_eye + (coded.x + 1.0) * 0.5) * 0.5, (coded.y + 1.0) * 0.5));
}`;

/** @param {WebGL2RenderingContext} gl @param {number} type @param {string} source */
function compile(gl, type, source) {
  const shader = /** @type {WebGLShader} */ (gl.createShader(type));
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(`shader: ${gl.getShaderInfoLog(shader)}`);
  return shader;
}

/** @param {number[]} fov radians: left, right, up, down @returns {[number, number, number, number]} */
export function tangents(fov) {
  return [Math.tan(fov[0]), Math.tan(fov[1]), Math.tan(fov[2]), Math.tan(fov[3])];
}

export class StreamRenderer {
  /** @param {WebGL2RenderingContext} gl */
  constructor(gl) {
    this.gl = gl;
    const program = /** @type {WebGLProgram} */ (gl.createProgram());
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, kVertex));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, kFragment));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(`program: ${gl.getProgramInfoLog(program)}`);
    this.program = program;
    /** @type {Record<string, WebGLUniformLocation | null>} */
    this.u = {};
    for (const name of ['u_video', 'u_current_to_rendered', 'u_current_tan', 'u_rendered_tan', 'u_warp_x', 'u_warp_y',
      'u_eye'])
      this.u[name] = gl.getUniformLocation(program, name);
    this.texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    this.vao = gl.createVertexArray();
    /** @type {FrameMeta | null} the frame in the texture */
    this.frame = null;
  }

  /** The video's current frame becomes the one drawn. @param {HTMLVideoElement} video @param {FrameMeta} meta */
  upload(video, meta) {
    const gl = this.gl;
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, video);
    this.frame = meta;
  }

  /**
   * Draws one eye of the current frame into a viewport, seen from `current` (null: exactly as rendered).
   * @param {number} eye @param {View | null} current @param {[number, number, number, number]} viewport
   */
  drawEye(eye, current, viewport) {
    const gl = this.gl;
    const f = this.frame;
    gl.viewport(...viewport);
    if (!f) return;
    const e = f.eyes[eye];
    const renderedTan = tangents(e.fov);
    const renderedRotation = quatToMat3(/** @type {Quat} */ (e.q));
    const view = current ?? { q: /** @type {Quat} */ (e.q), tan: renderedTan };
    gl.useProgram(this.program);
    gl.bindVertexArray(this.vao);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.uniform1i(this.u.u_video, 0);
    // current eye -> world -> rendered eye
    gl.uniformMatrix3fv(this.u.u_current_to_rendered, false, mat3TransposeMultiply(renderedRotation, quatToMat3(view.q)));
    gl.uniform4fv(this.u.u_current_tan, view.tan);
    gl.uniform4fv(this.u.u_rendered_tan, renderedTan);
    gl.uniform4fv(this.u.u_warp_x, e.wx);
    gl.uniform4fv(this.u.u_warp_y, e.wy);
    gl.uniform1f(this.u.u_eye, eye);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  }
}
