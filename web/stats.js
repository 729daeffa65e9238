// @ts-check
// What the page measures: per-frame latency by stage (pose sampled -> frame drawn), frame counts, rates. The
// node's timestamps are in its clock; the offset to this page's clock comes from pings on the data channel
// (the one with the smallest round trip wins, as streaming/clock_sync.cpp does).

/** A ring of the last N samples, for medians and 99th percentiles without growing. */
export class Window {
  /** @param {number} size */
  constructor(size) {
    this.values = new Float64Array(size);
    this.count = 0;
    this.next = 0;
  }

  /** @param {number} v */
  add(v) {
    if (!Number.isFinite(v)) return;
    this.values[this.next] = v;
    this.next = (this.next + 1) % this.values.length;
    this.count = Math.min(this.count + 1, this.values.length);
  }

  /** @param {number} q 0..1 */
  quantile(q) {
    if (this.count === 0) return NaN;
    const sorted = Array.from(this.values.subarray(0, this.count)).sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  }
}

export class ClockOffset {
  constructor() {
    this.bestRtt = Infinity;
    /** node clock minus this page's clock, ns */
    this.offsetNs = 0;
    this.rttMs = NaN;
    this.known = false;
  }

  /** @param {number} sentNs @param {number} nodeNs @param {number} receivedNs */
  pong(sentNs, nodeNs, receivedNs) {
    const rtt = receivedNs - sentNs;
    if (rtt < 0) return;
    this.rttMs = rtt / 1e6;
    // The best sample ages out slowly, so that a drift of either clock is followed.
    this.bestRtt *= 1.01;
    if (rtt <= this.bestRtt) {
      this.bestRtt = rtt;
      this.offsetNs = nodeNs - (sentNs + receivedNs) / 2;
      this.known = true;
    }
  }

  /** @param {number} nodeNs @returns {number} this page's clock */
  toLocal(nodeNs) {
    return nodeNs - this.offsetNs;
  }
}

export const kStages = ['uplink', 'pose_wait', 'render', 'encode_queue', 'encode', 'network_decode', 'draw', 'total'];

export class LatencyStats {
  constructor() {
    /** @type {Record<string, Window>} */
    this.stages = {};
    for (const s of kStages) this.stages[s] = new Window(240);
  }

  /**
   * One drawn frame. ts: the node's timestamps (FrameMetadata: pose sampled and display time in this page's
   * clock, the rest in the node's; the last, sent); decodedNs and drawnNs in this page's clock.
   * @param {number[]} ts @param {number} decodedNs @param {number} drawnNs @param {ClockOffset} clock
   */
  frame(ts, decodedNs, drawnNs, clock) {
    const [sampled, , received, renderStart, renderEnd, encodeStart, encodeEnd, sent] = ts;
    const ms = (/** @type {number} */ ns) => ns / 1e6;
    if (clock.known) {
      this.stages.uplink.add(ms(clock.toLocal(received) - sampled));
      this.stages.network_decode.add(ms(decodedNs - clock.toLocal(sent)));
    }
    this.stages.pose_wait.add(ms(renderStart - received));
    this.stages.render.add(ms(renderEnd - renderStart));
    this.stages.encode_queue.add(ms(encodeStart - renderEnd));
    this.stages.encode.add(ms(encodeEnd - encodeStart));
    this.stages.draw.add(ms(drawnNs - decodedNs));
    this.stages.total.add(ms(drawnNs - sampled));
  }

  /** @param {number} q @returns {Record<string, number>} */
  quantiles(q) {
    /** @type {Record<string, number>} */
    const out = {};
    for (const s of kStages) out[s] = Math.round(this.stages[s].quantile(q) * 100) / 100;
    return out;
  }
}
