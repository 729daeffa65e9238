// @ts-check
// Poses as Kairo carries them (OpenXR conventions: metres, +Y up, -Z forward; unit quaternions x, y, z, w),
// the pose message the data channel sends up (the UDP path's payload, streaming/messages.cpp: little-endian
// u64 pose id, u64 sample time, u64 display time in ns of this page's clock, then position and orientation
// as f32), and the desktop head a mouse and keys move.

/** @typedef {[number, number, number]} Vec3 */
/** @typedef {[number, number, number, number]} Quat x, y, z, w */
/** @typedef {{p: Vec3, q: Quat}} Pose */

export const kPosePacketType = 2;
export const kPoseMessageBytes = 1 + 52;
export const kHandPacketType = 9;
export const kHandMessageBytes = 1 + 42;

/** This page's clock in nanoseconds (monotonic, the one pose times and latencies use). */
export function nowNs() {
  return Math.round(performance.now() * 1e6);
}

/** @param {Quat} a @param {Quat} b @returns {Quat} a * b */
export function quatMultiply(a, b) {
  const [ax, ay, az, aw] = a;
  const [bx, by, bz, bw] = b;
  return [
    aw * bx + ax * bw + ay * bz - az * by,
    aw * by - ax * bz + ay * bw + az * bx,
    aw * bz + ax * by - ay * bx + az * bw,
    aw * bw - ax * bx - ay * by - az * bz,
  ];
}

/** @param {Vec3} axis unit @param {number} angle radians @returns {Quat} */
export function quatFromAxisAngle(axis, angle) {
  const s = Math.sin(angle / 2);
  return [axis[0] * s, axis[1] * s, axis[2] * s, Math.cos(angle / 2)];
}

/** @param {Quat} q @returns {Quat} */
export function quatNormalize(q) {
  const n = Math.hypot(q[0], q[1], q[2], q[3]) || 1;
  return [q[0] / n, q[1] / n, q[2] / n, q[3] / n];
}

/**
 * The rotation matrix of a unit quaternion, column-major (WebGL's mat3 layout).
 * @param {Quat} q @returns {number[]}
 */
export function quatToMat3(q) {
  const [x, y, z, w] = q;
  return [
    1 - 2 * (y * y + z * z), 2 * (x * y + z * w), 2 * (x * z - y * w),
    2 * (x * y - z * w), 1 - 2 * (x * x + z * z), 2 * (y * z + x * w),
    2 * (x * z + y * w), 2 * (y * z - x * w), 1 - 2 * (x * x + y * y),
  ];
}

/**
 * Column-major 3x3: transpose(a) * b.
 * @param {number[]} a @param {number[]} b @returns {number[]}
 */
export function mat3TransposeMultiply(a, b) {
  const out = new Array(9);
  for (let c = 0; c < 3; ++c)
    for (let r = 0; r < 3; ++r) {
      let sum = 0;
      for (let k = 0; k < 3; ++k) sum += a[r * 3 + k] * b[c * 3 + k];
      out[c * 3 + r] = sum;
    }
  return out;
}

/** @param {Quat} q @param {Vec3} v @returns {Vec3} q applied to v */
export function rotate(q, v) {
  const m = quatToMat3(q);
  return [
    m[0] * v[0] + m[3] * v[1] + m[6] * v[2],
    m[1] * v[0] + m[4] * v[1] + m[7] * v[2],
    m[2] * v[0] + m[5] * v[1] + m[8] * v[2],
  ];
}

/** Writes pose messages into one reused buffer: no allocation per pose. */
export class PoseWriter {
  constructor() {
    this.buffer = new ArrayBuffer(kPoseMessageBytes);
    this.view = new DataView(this.buffer);
    this.poseId = 0n;
  }

  /**
   * @param {Pose} pose @param {number} sampleNs @param {number} displayNs
   * @returns {ArrayBuffer} valid until the next call
   */
  write(pose, sampleNs, displayNs) {
    const v = this.view;
    this.poseId += 1n;
    v.setUint8(0, kPosePacketType);
    v.setBigUint64(1, this.poseId, true);
    v.setBigUint64(9, BigInt(sampleNs), true);
    v.setBigUint64(17, BigInt(displayNs), true);
    for (let i = 0; i < 3; ++i) v.setFloat32(25 + 4 * i, pose.p[i], true);
    const q = quatNormalize(pose.q);
    for (let i = 0; i < 4; ++i) v.setFloat32(37 + 4 * i, q[i], true);
    return this.buffer;
  }
}

/**
 * Writes hand messages (streaming/room_messages.cpp: u64 sample time, u8 hand 1 left 2 right, u8 tracked,
 * f32 grip 0..1, position, orientation) into one reused buffer.
 */
export class HandWriter {
  constructor() {
    this.buffer = new ArrayBuffer(kHandMessageBytes);
    this.view = new DataView(this.buffer);
  }

  /**
   * @param {1 | 2} hand @param {boolean} tracked @param {number} grip @param {Pose} pose @param {number} sampleNs
   * @returns {ArrayBuffer} valid until the next call
   */
  write(hand, tracked, grip, pose, sampleNs) {
    const v = this.view;
    v.setUint8(0, kHandPacketType);
    v.setBigUint64(1, BigInt(sampleNs), true);
    v.setUint8(9, hand);
    v.setUint8(10, tracked ? 1 : 0);
    v.setFloat32(11, Math.min(1, Math.max(0, grip || 0)), true);
    for (let i = 0; i < 3; ++i) v.setFloat32(15 + 4 * i, pose.p[i], true);
    const q = quatNormalize(pose.q);
    for (let i = 0; i < 4; ++i) v.setFloat32(27 + 4 * i, q[i], true);
    return this.buffer;
  }
}

/** The desktop head: yaw and pitch from mouse drags, position from W A S D (and Q E for down and up). */
export class DesktopHead {
  /** @param {HTMLElement} element */
  constructor(element) {
    this.yaw = 0;
    this.pitch = 0;
    /** @type {Vec3} */
    this.position = [0, 1.6, 0];
    /** @type {Set<string>} */
    this.keys = new Set();
    this.last = performance.now();
    /** @type {{x: number, y: number} | null} */
    let drag = null;
    element.addEventListener('pointerdown', (e) => {
      drag = { x: e.clientX, y: e.clientY };
      element.setPointerCapture(e.pointerId);
    });
    element.addEventListener('pointermove', (e) => {
      if (!drag) return;
      this.look((e.clientX - drag.x) * 0.005, (e.clientY - drag.y) * 0.005);
      drag = { x: e.clientX, y: e.clientY };
    });
    element.addEventListener('pointerup', () => (drag = null));
    window.addEventListener('keydown', (e) => {
      if (!(e.target instanceof HTMLInputElement)) this.keys.add(e.key.toLowerCase());
    });
    window.addEventListener('keyup', (e) => this.keys.delete(e.key.toLowerCase()));
  }

  /** Turns the head: dx to the right, dy down (radians). @param {number} dx @param {number} dy */
  look(dx, dy) {
    this.yaw -= dx;
    this.pitch = Math.max(-1.5, Math.min(1.5, this.pitch - dy));
  }

  /** @returns {Pose} now, after moving for the time since the last call */
  pose() {
    const now = performance.now();
    const dt = Math.min(0.1, (now - this.last) / 1000);
    this.last = now;
    const q = this.orientation();
    /** @type {Vec3} */
    const move = [0, 0, 0];
    if (this.keys.has('w')) move[2] -= 1;
    if (this.keys.has('s')) move[2] += 1;
    if (this.keys.has('a')) move[0] -= 1;
    if (this.keys.has('d')) move[0] += 1;
    const forward = rotate(quatFromAxisAngle([0, 1, 0], this.yaw), move);
    const up = (this.keys.has('e') ? 1 : 0) - (this.keys.has('q') ? 1 : 0);
    const speed = 1.2 * dt;
    this.position = [
      this.position[0] + forward[0] * speed,
      this.position[1] + up * speed,
      this.position[2] + forward[2] * speed,
    ];
    return { p: [...this.position], q };
  }

  /** @returns {Quat} */
  orientation() {
    return quatNormalize(
      quatMultiply(quatFromAxisAngle([0, 1, 0], this.yaw), quatFromAxisAngle([1, 0, 0], this.pitch)));
  }
}
