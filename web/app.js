// @ts-check
// The page: log in, pick a scene and room, connect; a desktop view (both eyes or one, mouse-look, keys move)
// or, where the browser offers WebXR, "Enter VR". Exposes window.kairo.status (read-only) for tests and
// monitoring. docs/web-client.md says what everything on the page means.
import { Api, explain } from './api.js';
import { DesktopHead, nowNs } from './pose.js';
import { StreamRenderer, tangents } from './renderer.js';
import { StreamSession } from './session.js';

/** @typedef {import('./renderer.js').FrameMeta} FrameMeta */
/** @typedef {import('./pose.js').Pose} Pose */

/** @param {string} id @returns {any} */
const $ = (id) => document.getElementById(id);

const api = new Api();
const canvas = /** @type {HTMLCanvasElement} */ ($('canvas'));
const video = /** @type {HTMLVideoElement} */ ($('video'));
const gl = /** @type {WebGL2RenderingContext} */ (canvas.getContext('webgl2', { xrCompatible: true, antialias: false, preserveDrawingBuffer: true }));
const renderer = new StreamRenderer(gl);
const head = new DesktopHead(canvas);

const status = {
  state: /** @type {string} */ ('idle'),
  error: /** @type {string | null} */ (null),
  framesDecoded: 0,
  framesDropped: 0,
  framesDrawn: 0,
  fps: 0,
  bitrateBps: 0,
  loss: 0,
  decodeMs: 0,
  handsSent: 0,
  room: /** @type {null | {members: string[], objects: number, version: number}} */ (null),
  latencyMs: /** @type {Record<string, number>} */ ({}),
  latencyP99Ms: /** @type {Record<string, number>} */ ({}),
  lastFrame: /** @type {null | {id: number, rtpTimestamp: number, poseId: number, pose: Pose, eyes: any[], size: number[]}} */ (null),
  sessionId: '',
  xr: false,
  reprojection: true,
};

// Read-only from outside: each read is a frozen copy.
Object.defineProperty(window, 'kairo', {
  value: Object.freeze({
    get status() {
      return Object.freeze(JSON.parse(JSON.stringify(status)));
    },
  }),
});

/** @type {StreamSession | null} */
let session = null;
/** @type {{meta: FrameMeta, decodedNs: number, drawn: boolean} | null} */
let newest = null;
/** @type {any} */
let xrSession = null;

/** @param {string} state @param {string | null} error */
function showState(state, error) {
  status.state = state;
  status.error = error;
  $('state').textContent = state;
  const box = $('error');
  box.hidden = !error || state === 'ended' && error === 'You ended the session.';
  box.textContent = error || '';
  const live = state === 'connecting' || state === 'streaming';
  $('connect').disabled = live;
  $('disconnect').disabled = !live;
}

/** The head pose now: the headset's in VR, the desktop head otherwise. @returns {Pose} */
function desktopPose() {
  return head.pose();
}

/** @param {FrameMeta} meta @param {number} decodedNs */
function onFrame(meta, decodedNs) {
  renderer.upload(video, meta);
  newest = { meta, decodedNs, drawn: false };
  const [l, r] = meta.eyes;
  status.lastFrame = {
    id: meta.id,
    rtpTimestamp: meta.rtp,
    poseId: meta.pose_id,
    pose: { p: [(l.p[0] + r.p[0]) / 2, (l.p[1] + r.p[1]) / 2, (l.p[2] + r.p[2]) / 2], q: /** @type {any} */ (l.q) },
    eyes: meta.eyes.map((e) => ({ p: e.p, q: e.q, fov: e.fov })),
    size: meta.size,  // rendered eye width, height; coded eye width, height (smaller: foveated or scaled)
  };
}

function drawn() {
  if (!newest || newest.drawn || !session) return;
  newest.drawn = true;
  status.framesDrawn += 1;
  session.latency.frame(newest.meta.ts, newest.decodedNs, nowNs(), session.clock);
}

// Desktop: each animation frame samples the head, sends it, and draws the newest frame reprojected to it.
function desktopFrame() {
  requestAnimationFrame(desktopFrame);
  if (xrSession) return;
  const pose = desktopPose();
  session?.sendPose(pose);
  const meta = renderer.frame;
  if (!meta) return;
  const oneEye = $('one-eye').checked;
  status.reprojection = $('reproject').checked;
  const eyeWidth = meta.size[0], eyeHeight = meta.size[1];
  const width = oneEye ? eyeWidth : 2 * eyeWidth;
  if (canvas.width !== width || canvas.height !== eyeHeight) {
    canvas.width = width;
    canvas.height = eyeHeight;
  }
  for (let eye = 0; eye < (oneEye ? 1 : 2); ++eye) {
    // The eye now: the head's orientation (eyes are parallel), the FOV the frame was rendered with.
    const view = status.reprojection ? { q: pose.q, tan: tangents(meta.eyes[eye].fov) } : null;
    renderer.drawEye(eye, view, [eye * eyeWidth, 0, eyeWidth, eyeHeight]);
  }
  drawn();
}

// WebXR: poses at the XR frame rate with the predicted display time; each eye drawn from the newest frame
// reprojected to that eye's view now.
/** @param {number} _time @param {any} frame */
function xrFrame(_time, frame) {
  if (!xrSession) return;
  xrSession.requestAnimationFrame(xrFrame);
  const viewer = frame.getViewerPose(xrReference);
  if (!viewer) return;
  const t = viewer.transform;
  /** @type {Pose} */
  const pose = { p: [t.position.x, t.position.y, t.position.z], q: [t.orientation.x, t.orientation.y, t.orientation.z, t.orientation.w] };
  session?.sendPose(pose);
  sendHands(frame);
  status.reprojection = $('reproject').checked;
  const layer = xrSession.renderState.baseLayer;
  gl.bindFramebuffer(gl.FRAMEBUFFER, layer.framebuffer);
  if (!renderer.frame) return;
  viewer.views.forEach((/** @type {any} */ view, /** @type {number} */ i) => {
    const vp = layer.getViewport(view);
    const o = view.transform.orientation;
    // The projection matrix's tangents: x = (2/width) so tan right - tan left = 2 / m[0], and so on.
    const m = view.projectionMatrix;
    const tanLeft = (m[8] - 1) / m[0], tanRight = (m[8] + 1) / m[0];
    const tanDown = (m[9] - 1) / m[5], tanUp = (m[9] + 1) / m[5];
    const current = status.reprojection ? { q: /** @type {any} */ ([o.x, o.y, o.z, o.w]), tan: /** @type {[number, number, number, number]} */ ([tanLeft, tanRight, tanUp, tanDown]) } : null;
    renderer.drawEye(Math.min(i, 1), current, [vp.x, vp.y, vp.width, vp.height]);
  });
  drawn();
}
/** @type {any} */
let xrReference = null;
/** @type {Set<number>} hands sent as tracked, so that a lost one is said to be lost once */
const trackedHands = new Set();

// The controllers' grip poses as hands (avatars' hands in a room, grabbing the shared object with squeeze).
/** @param {any} frame */
function sendHands(frame) {
  if (!session) return;
  const seen = new Set();
  for (const source of xrSession.inputSources) {
    const hand = source.handedness === 'left' ? 1 : source.handedness === 'right' ? 2 : 0;
    if (!hand || !source.gripSpace) continue;
    const grip = frame.getPose(source.gripSpace, xrReference);
    if (!grip) continue;
    const t = grip.transform;
    const squeeze = source.gamepad?.buttons?.[1]?.value ?? 0;
    session.sendHand(/** @type {1 | 2} */ (hand), true, squeeze,
      { p: [t.position.x, t.position.y, t.position.z], q: [t.orientation.x, t.orientation.y, t.orientation.z, t.orientation.w] });
    seen.add(hand);
  }
  for (const hand of trackedHands)
    if (!seen.has(hand)) session.sendHand(/** @type {1 | 2} */ (hand), false, 0, { p: [0, 0, 0], q: [0, 0, 0, 1] });
  trackedHands.clear();
  for (const hand of seen) trackedHands.add(hand);
}

async function enterVr() {
  const xr = /** @type {any} */ (navigator).xr;
  xrSession = await xr.requestSession('immersive-vr', { requiredFeatures: ['local-floor'] });
  status.xr = true;
  const XRWebGLLayerClass = /** @type {any} */ (window).XRWebGLLayer;
  xrSession.updateRenderState({ baseLayer: new XRWebGLLayerClass(xrSession, gl) });
  xrReference = await xrSession.requestReferenceSpace('local-floor');
  xrSession.addEventListener('end', () => {
    xrSession = null;
    status.xr = false;
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
  });
  xrSession.requestAnimationFrame(xrFrame);
}

async function offerVr() {
  const xr = /** @type {any} */ (navigator).xr;
  if (xr && (await xr.isSessionSupported('immersive-vr').catch(() => false))) $('enter-vr').hidden = false;
}

// The overlay: what a person (and a test) needs to see whether the stream is healthy.
function updateStats() {
  if (session) {
    const c = session.counters;
    Object.assign(status, { framesDecoded: c.framesDecoded, framesDropped: c.framesDropped, fps: c.fps,
      bitrateBps: c.bitrateBps, loss: c.loss, decodeMs: c.decodeMs, handsSent: session.handsSent });
    const r = session.room;
    status.room = r ? { members: r.members.map((m) => m.name), objects: r.objects.length, version: r.version } : null;
    status.latencyMs = session.latency.quantiles(0.5);
    status.latencyP99Ms = session.latency.quantiles(0.99);
  }
  $('stats').hidden = !$('show-stats').checked;
  const l = status.latencyMs;
  const stages = Object.keys(l).map((k) => `  ${k.padEnd(15)}${String(l[k]).padStart(7)} ms`).join('\n');
  $('stats').textContent = status.state === 'streaming' || status.state === 'connecting'
    ? `${status.fps.toFixed(1)} fps  ${(status.bitrateBps / 1e6).toFixed(2)} Mbit/s  loss ${(100 * status.loss).toFixed(1)} %\n` +
      `decoded ${status.framesDecoded}  dropped ${status.framesDropped}` +
      (status.room ? `\nroom: ${status.room.members.join(', ')}` : '') + `\nlatency p50 (pose -> drawn)\n${stages}`
    : '';
}

// The catalogue's scenes as suggestions for the scene field (nodes' own folders are not listed: type those).
function suggestScenes() {
  api.sceneNames().then((names) => {
    const list = $('scene-list');
    list.replaceChildren(...names.map((name) => Object.assign(document.createElement('option'), { value: name })));
  }).catch(() => {});  // suggestions only: the page works without them
}

$('login').addEventListener('submit', async (/** @type {Event} */ e) => {
  e.preventDefault();
  if (session && (session.state === 'connecting' || session.state === 'streaming')) return;
  showState('connecting', null);
  try {
    if (!api.tokens) {
      await api.login($('username').value, $('password').value);
      suggestScenes();
    }
  } catch (err) {
    showState('failed', explain(err));
    return;
  }
  const size = Number($('size').value);
  const room = $('room').value.trim();
  newest = null;
  renderer.frame = null;
  status.lastFrame = null;
  status.framesDrawn = 0;
  session = new StreamSession({ api, video, onState: showState, onFrame, headPose: desktopPose });
  status.sessionId = '';
  await session.start({ scene: $('scene').value.trim(), eye_width: size, eye_height: size, fps: Number($('fps').value),
    ...(room ? { room } : {}) });
  status.sessionId = session.sessionId;
});
$('disconnect').addEventListener('click', () => session?.stop());
$('enter-vr').addEventListener('click', () => enterVr().catch((e) => showState(status.state, `VR could not start: ${e.message}`)));
window.addEventListener('pagehide', () => session?.stop());

// Tests turn the desktop head without a mouse; a person uses the mouse.
Object.defineProperty(window, 'kairoTest', {
  value: Object.freeze({
    /** @param {number} dx @param {number} dy */
    look: (dx, dy) => head.look(dx, dy),
    /** @param {boolean} on */
    reproject: (on) => { $('reproject').checked = on; },
    /** @param {number} yaw @param {number} pitch */
    setHead: (yaw, pitch) => { head.yaw = yaw; head.pitch = pitch; },
    /** @param {number} x @param {number} y @param {number} z */
    setPosition: (x, y, z) => { head.position = [x, y, z]; },
    head: () => ({ p: [...head.position], q: head.orientation() }),
  }),
});

window.setInterval(updateStats, 250);
requestAnimationFrame(desktopFrame);
offerVr();
