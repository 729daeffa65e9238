// The browser client against kairo client, in one run on one node (bench/RESULTS.md):
//   1. pose-to-display latency per stage, p50/p99, measured in the browser (pose sampled -> frame presented
//      -> frame drawn) at 2x512^2 30 fps, and kairo client's over UDP (pose sampled -> frame decoded) on the
//      same node right after;
//   2. the browser's decode rate at 2x1024^2 and 2x1920^2: frames decoded per second, the node's rate beside
//      it, and the decoder's own time per frame (what it could do if the node rendered faster).
// Usage: node bench/browser.mjs BUILD_DIR [SECONDS]      (needs scripts/setup.sh's web/node_modules)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser } from '../web/test/cdp.mjs';
import { connect, nodeFrames, sleep } from '../web/test/harness.mjs';
import { Stack } from '../web/test/stack.mjs';

const build = process.argv[2];
const seconds = Number(process.argv[3] ?? 20);
const kairo = join(build, 'kairo');
const work = mkdtempSync(join(tmpdir(), 'kairo-bench-browser-'));
const stack = await Stack.start(kairo, { maxSessions: 2 });
const results = {};
try {
  // 1. The browser at 2x512^2, 30 fps.
  let browser = await Browser.launch();
  let page = await browser.newPage();
  await connect(page, stack, { size: 512, fps: 30 });
  await page.waitFor(`window.kairo.status.state === 'streaming' && window.kairo.status.framesDecoded > 30`, 60000);
  await sleep(seconds * 1000);
  const s = await page.evaluate('window.kairo.status');
  results.browser_512 = { fps: s.fps, p50: s.latencyMs, p99: s.latencyP99Ms, decoded: s.framesDecoded, dropped: s.framesDropped };
  browser.close();
  await sleep(4000);  // the session ends (the browser stopped sending poses)

  // kairo client over UDP, same node, same size and rate.
  const report = join(work, 'client.json');
  const c = spawnSync(kairo, ['client', '--control', stack.url.slice(0, -1), '--user', stack.user, '--scene', 'vr-room',
    '--size', '512x512', '--fps', '30', '--duration', String(seconds), '--report', report],
  { env: { ...process.env, KAIRO_PASSWORD: stack.password }, encoding: 'utf8' });
  if (c.status !== 0) throw new Error(`kairo client: ${c.stderr.slice(-800)}`);
  const r = JSON.parse(readFileSync(report, 'utf8'));
  results.client_512 = { fps: r.fps, latency: r.latency_ms, decoded: r.frames_decoded };

  // 2. Decode rate at larger sizes.
  for (const size of [1024, 1920]) {
    browser = await Browser.launch();
    page = await browser.newPage();
    await connect(page, stack, { size, fps: 30 });
    await page.waitFor(`window.kairo.status.state === 'streaming' && window.kairo.status.framesDecoded > 5`, 120000);
    const before = nodeFrames(await stack.metrics(), 'webrtc'), d0 = (await page.evaluate('window.kairo.status')).framesDecoded;
    const t0 = Date.now();
    await sleep(Math.max(10, seconds / 2) * 1000);
    const after = nodeFrames(await stack.metrics(), 'webrtc');
    const st = await page.evaluate('window.kairo.status');
    const dt = (Date.now() - t0) / 1000;
    results[`browser_${size}`] = {
      decoded_fps: (st.framesDecoded - d0) / dt,
      node_fps: ((after.sent - after.dropped) - (before.sent - before.dropped)) / dt,
      dropped: st.framesDropped,
      decode_ms: st.decodeMs,
      p50_total_ms: st.latencyMs.total,
    };
    browser.close();
    await sleep(4000);
  }
} finally {
  stack.stop();
  rmSync(work, { recursive: true, force: true });
}

const f = (/** @type {number} */ v) => (v === null || v === undefined || Number.isNaN(v) ? '-' : Number(v).toFixed(1));
console.log(`\nPose-to-display latency at 2x512^2 30 fps, one node, ${seconds} s each (ms, p50 / p99):`);
console.log(`| stage | browser (WebRTC) | kairo client (UDP) |\n|---|---|---|`);
const b = results.browser_512, k = results.client_512.latency;
const rows = [
  ['uplink', 'uplink', 'uplink'], ['pose wait', 'pose_wait', 'pose_wait'], ['render', 'render', 'render'],
  ['encode queue', 'encode_queue', 'encode_queue'], ['encode', 'encode', 'encode'],
  ['network (+ pacing, send)', null, 'network'], ['decode', null, 'decode'],
  ['network + decode (node sent -> presented)', 'network_decode', null], ['draw (presented -> drawn)', 'draw', null],
  ['total', 'total', 'total'],
];
for (const [name, bk, kk] of rows) {
  const bv = bk ? `${f(b.p50[bk])} / ${f(b.p99[bk])}` : '-';
  const kv = kk && k[kk] ? `${f(k[kk].p50)} / ${f(k[kk].p99)}` : '-';
  console.log(`| ${name} | ${bv} | ${kv} |`);
}
console.log(`| frames per second | ${f(b.fps)} | ${f(results.client_512.fps)} |`);
console.log(`\nBrowser decode rate (frames decoded per second; the node's frames on the wire per second beside it):`);
console.log(`| size | decoded fps | node fps | dropped | decoder time per frame (ms) | p50 pose -> drawn (ms) |\n|---|---|---|---|---|---|`);
for (const size of [1024, 1920]) {
  const x = results[`browser_${size}`];
  console.log(`| 2x${size}^2 | ${f(x.decoded_fps)} | ${f(x.node_fps)} | ${x.dropped} | ${f(x.decode_ms)} | ${f(x.p50_total_ms)} |`);
}
console.log(`\n${JSON.stringify(results)}`);
