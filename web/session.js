// @ts-check
// One browser session from creation to end: the control plane places it (a WebRTC session: the answer names
// the node's signalling socket and a credential for this session alone), the node's socket is greeted with
// that credential and the first head pose, the node's offer is answered, and then video arrives as a WebRTC
// track while the data channel carries poses up and each frame's metadata down (paired with the decoded
// frame by its RTP timestamp).
import { explain } from './api.js';
import { HandWriter, nowNs, PoseWriter } from './pose.js';
import { parseRoomState } from './room.js';
import { ClockOffset, LatencyStats } from './stats.js';

/** @typedef {import('./api.js').Api} Api */
/** @typedef {import('./pose.js').Pose} Pose */
/** @typedef {import('./renderer.js').FrameMeta} FrameMeta */
/** @typedef {'idle' | 'connecting' | 'streaming' | 'failed' | 'ended'} State */

const kHelloRetries = 40;  // a node picks a new session up within its poll interval (250 ms); 8 s in all
const kMetadataKept = 256;

export class StreamSession {
  /**
   * @param {{api: Api, video: HTMLVideoElement, onState: (state: State, error: string | null) => void,
   *   onFrame: (meta: FrameMeta, decodedNs: number) => void, headPose: () => Pose}} options
   */
  constructor(options) {
    this.api = options.api;
    this.video = options.video;
    this.onState = options.onState;
    this.onFrame = options.onFrame;
    this.headPose = options.headPose;
    /** @type {State} */
    this.state = 'idle';
    this.sessionId = '';
    /** @type {WebSocket | null} */
    this.socket = null;
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {RTCDataChannel | null} */
    this.channel = null;
    /** @type {import('./room.js').RoomState | null} the room as the node last said */
    this.room = null;
    /** @type {Map<number, FrameMeta>} by RTP timestamp */
    this.metadata = new Map();
    this.clock = new ClockOffset();
    this.latency = new LatencyStats();
    this.poses = new PoseWriter();
    this.hands = new HandWriter();
    this.handsSent = 0;
    this.counters = { framesDecoded: 0, framesDropped: 0, framesPresented: 0, framesWithoutMetadata: 0,
      bytesReceived: 0, packetsLost: 0, packetsReceived: 0, fps: 0, bitrateBps: 0, loss: 0, decodeMs: 0 };
    /** @type {any} */
    this.lastStats = null;
    /** @type {number[]} */
    this.timers = [];
    this.lastFrameNs = 0;
  }

  /** @param {{scene: string, eye_width: number, eye_height: number, fps: number, room?: string}} shape */
  async start(shape) {
    this.setState('connecting', null);
    let session;
    try {
      session = await this.api.createSession(shape);
    } catch (e) {
      return this.fail(explain(e));
    }
    this.sessionId = session.session_id;
    if (!session.signalling_url || !session.signalling_credential)
      return this.fail('The node placed for this session takes no browser sessions.');
    this.connectSignalling(session.signalling_url, session.signalling_credential, kHelloRetries);
    this.timers.push(window.setInterval(() => this.report(), 250));
    this.timers.push(window.setInterval(() => this.watchSession(), 2000));
  }

  /** @param {string} url @param {string} credential @param {number} retries */
  connectSignalling(url, credential, retries) {
    if (this.state !== 'connecting') return;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      const pose = this.headPose();
      socket.send(JSON.stringify({ type: 'hello', session_id: this.sessionId, credential, pose: { p: pose.p, q: pose.q } }));
    };
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(String(event.data));
      } catch {
        return this.fail('The node sent a malformed signalling message.');
      }
      this.onSignalling(message, () => {
        socket.onclose = null;
        socket.close();
        if (retries > 0) window.setTimeout(() => this.connectSignalling(url, credential, retries - 1), 200);
        else this.fail('The node never picked the session up (node down?).');
      }).catch((e) => this.fail(`WebRTC could not connect: ${e instanceof Error ? e.message : e}`));
    };
    socket.onerror = () => {};
    socket.onclose = () => {
      if (this.state === 'connecting' && !this.pc) this.fail('WebRTC could not connect: the node\'s signalling socket closed.');
    };
  }

  /** @param {any} message @param {() => void} retry */
  async onSignalling(message, retry) {
    switch (message.type) {
      case 'welcome':
        return;
      case 'error':
        if (message.code === 'not_ready') return retry();
        return this.fail(`The node refused the connection: ${message.message}`);
      case 'offer':
        return this.answer(message.sdp, message.iceServers || []);
      case 'ice':
        if (this.pc && message.candidate)
          await this.pc.addIceCandidate({ candidate: message.candidate, sdpMLineIndex: message.sdpMLineIndex });
        return;
      default:
        return;
    }
  }

  /** @param {string} sdp @param {RTCIceServer[]} iceServers */
  async answer(sdp, iceServers) {
    const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
    this.pc = pc;
    pc.onicecandidate = (e) => {
      if (e.candidate && this.socket?.readyState === WebSocket.OPEN)
        this.socket.send(JSON.stringify({ type: 'ice', candidate: e.candidate.candidate, sdpMLineIndex: e.candidate.sdpMLineIndex ?? 0 }));
    };
    pc.ontrack = (e) => {
      // As little buffering as the browser allows: a late frame is worth less than a dropped one.
      const receiver = /** @type {any} */ (e.receiver);
      if ('jitterBufferTarget' in receiver) receiver.jitterBufferTarget = 0;
      if ('playoutDelayHint' in receiver) receiver.playoutDelayHint = 0;  // Chromium's older name for it
      this.video.srcObject = new MediaStream([e.track]);
      this.video.play().catch(() => {});
      this.watchFrames();
    };
    pc.ondatachannel = (e) => this.useChannel(e.channel);
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') this.fail('WebRTC could not connect (ICE or DTLS failed).');
      if (pc.connectionState === 'connected' && this.state === 'connecting') this.setState('streaming', null);
    };
    await pc.setRemoteDescription({ type: 'offer', sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.socket?.send(JSON.stringify({ type: 'answer', sdp: answer.sdp }));
  }

  /** @param {RTCDataChannel} channel */
  useChannel(channel) {
    channel.binaryType = 'arraybuffer';
    this.channel = channel;
    channel.onmessage = (e) => {
      if (typeof e.data !== 'string') {
        // Binary: the room's state (the node draws the others already; the page lists who is there).
        const room = parseRoomState(e.data);
        if (room && (!this.room || room.version >= this.room.version)) this.room = room;
        return;
      }
      let m;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      if (m.t === 'frame') {
        this.metadata.set(m.rtp >>> 0, m);
        if (this.metadata.size > kMetadataKept) this.metadata.delete(/** @type {number} */ (this.metadata.keys().next().value));
      } else if (m.t === 'pong') {
        this.clock.pong(m.c, m.n, nowNs());
      }
    };
  }

  /** Sends the head pose for the display time it is predicted to be seen at. @param {Pose} pose */
  sendPose(pose) {
    if (this.channel?.readyState !== 'open') return;
    const sampled = nowNs();
    const predicted = this.latency.stages.total.quantile(0.5);
    const ahead = Number.isFinite(predicted) ? Math.min(100, predicted) : 40;
    this.channel.send(this.poses.write(pose, sampled, sampled + Math.round(ahead * 1e6)));
  }

  /**
   * A tracked controller's grip pose (the avatar's hand in a room; grip above 0.5 grabs the shared object).
   * @param {1 | 2} hand @param {boolean} tracked @param {number} grip @param {Pose} pose
   */
  sendHand(hand, tracked, grip, pose) {
    if (this.channel?.readyState !== 'open') return;
    this.channel.send(this.hands.write(hand, tracked, grip, pose, nowNs()));
    this.handsSent += 1;
  }

  watchFrames() {
    const video = /** @type {any} */ (this.video);
    if (typeof video.requestVideoFrameCallback !== 'function') return this.fail('This browser cannot pair video frames with their metadata (no requestVideoFrameCallback).');
    /** @param {number} now @param {any} md */
    const onFrame = (now, md) => {
      if (this.state === 'failed' || this.state === 'ended') return;
      this.counters.framesPresented += 1;
      const meta = this.metadata.get(md.rtpTimestamp >>> 0);
      if (meta) {
        this.lastFrameNs = nowNs();
        this.onFrame(meta, this.lastFrameNs);
      } else {
        this.counters.framesWithoutMetadata += 1;
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  // Four times a second: the receiver's counters, the report to the node (loss, RTT, decode time) and a ping.
  async report() {
    if (!this.pc || this.state !== 'streaming') return;
    const stats = await this.pc.getStats();
    const now = performance.now();
    stats.forEach((s) => {
      if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
      const c = this.counters;
      const last = this.lastStats;
      if (last) {
        const dt = (now - last.at) / 1000;
        c.fps = (s.framesDecoded - last.framesDecoded) / dt;
        c.bitrateBps = (8 * (s.bytesReceived - last.bytesReceived)) / dt;
        const lost = s.packetsLost - last.packetsLost, received = s.packetsReceived - last.packetsReceived;
        c.loss = lost + received > 0 ? Math.max(0, lost) / (lost + received) : 0;
        const decoded = s.framesDecoded - last.framesDecoded;
        if (decoded > 0) c.decodeMs = (1000 * (s.totalDecodeTime - last.totalDecodeTime)) / decoded;
      }
      c.framesDecoded = s.framesDecoded;
      c.framesDropped = s.framesDropped ?? 0;
      c.bytesReceived = s.bytesReceived;
      c.packetsLost = s.packetsLost;
      c.packetsReceived = s.packetsReceived;
      this.lastStats = { at: now, framesDecoded: s.framesDecoded, bytesReceived: s.bytesReceived,
        packetsLost: s.packetsLost, packetsReceived: s.packetsReceived, totalDecodeTime: s.totalDecodeTime };
    });
    if (this.channel?.readyState === 'open') {
      this.channel.send(JSON.stringify({ t: 'report', loss: this.counters.loss, rtt_ms: this.clock.rttMs || 0, decode_ms: this.counters.decodeMs }));
      this.channel.send(JSON.stringify({ t: 'ping', c: nowNs() }));
    }
    if (this.lastFrameNs && nowNs() - this.lastFrameNs > 3e9) this.watchSession();
  }

  // The control plane's word on the session: it says why a session ended or failed.
  async watchSession() {
    if (!this.sessionId || this.state === 'failed' || this.state === 'ended') return;
    try {
      const s = await this.api.session(this.sessionId);
      if (s.state === 'failed') this.fail(`The session failed: ${s.failure_reason || 'no reason given'}.`);
      else if (s.state === 'ended') this.end(`The session ended: ${s.failure_reason || 'the node ended it'}.`);
    } catch {
      // The control plane unreachable for a moment: the stream may carry on.
    }
  }

  /** @param {State} state @param {string | null} error */
  setState(state, error) {
    this.state = state;
    this.onState(state, error);
  }

  /** @param {string} why */
  fail(why) {
    if (this.state === 'failed' || this.state === 'ended') return;
    this.close();
    this.setState('failed', why);
  }

  /** @param {string} why */
  end(why) {
    if (this.state === 'failed' || this.state === 'ended') return;
    this.close();
    this.setState('ended', why);
  }

  async stop() {
    const id = this.sessionId;
    this.end('You ended the session.');
    if (id) await this.api.endSession(id).catch(() => {});
  }

  close() {
    for (const t of this.timers) window.clearInterval(t);
    this.timers = [];
    this.channel?.close();
    this.pc?.close();
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
    }
    this.video.srcObject = null;
  }
}
