// The browser client end to end, in Debian's headless Chromium driven over the DevTools protocol, against a
// real control plane, node and PostgreSQL on loopback (docs/web-client.md). Usage:
//   node web/test/browser_test.mjs BUILD_DIR [TEST]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Browser } from './cdp.mjs';
import { check, connect, nodeFrames, psnrDb, run, sleep } from './harness.mjs';
import { Stack } from './stack.mjs';

const build = process.argv[2];
if (!build) throw new Error('usage: browser_test.mjs BUILD_DIR [TEST]');
const kairo = join(build, 'kairo');
const work = mkdtempSync(join(tmpdir(), 'kairo-browser-test-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

/** A pose as `kairo render --pose` takes it. @param {{p: number[], q: number[]}} pose */
const poseArg = (pose) => [...pose.p, ...pose.q].map((v) => v.toFixed(7)).join(',');

/** The page's canvas, captured from the screen. @param {import('./cdp.mjs').Page} page @param {string} file */
async function screenshotCanvas(page, file) {
  const r = await page.evaluate(`(() => { const r = document.getElementById('canvas').getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; })()`);
  writeFileSync(file, await page.screenshot(r));
  return r;
}

async function desktopView() {
  const stack = await Stack.start(kairo);
  const browser = await Browser.launch();
  try {
    const page = await browser.newPage();
    await connect(page, stack, { size: 512, fps: 30 });
    await page.waitFor(`window.kairo.status.state === 'streaming' && window.kairo.status.framesDecoded > 30 && window.kairo.status.lastFrame`, 60000);
    // 10 s of streaming: the browser decodes (nearly) every frame the node put on the wire.
    const before = nodeFrames(await stack.metrics(), 'webrtc');
    const decodedBefore = (await page.evaluate('window.kairo.status')).framesDecoded;
    await sleep(10000);
    const after = nodeFrames(await stack.metrics(), 'webrtc');
    const status = await page.evaluate('window.kairo.status');
    const onWire = (after.sent - after.dropped) - (before.sent - before.dropped);
    const decoded = status.framesDecoded - decodedBefore;
    console.log(`  10 s: node put ${onWire} frames on the wire, the browser decoded ${decoded} (${status.fps.toFixed(1)} fps, ` +
      `${(status.bitrateBps / 1e6).toFixed(2)} Mbit/s, p50 pose->drawn ${status.latencyMs.total} ms)`);
    check(onWire >= 100, `the node sent at least 100 frames in 10 s (${onWire})`);
    check(decoded >= 0.95 * onWire, `decoded ${decoded} >= 95 % of ${onWire} sent`);
    check(status.framesDropped <= 0.05 * status.framesDecoded, `browser dropped ${status.framesDropped} frames`);
    for (const stage of ['render', 'encode', 'draw', 'total'])
      check(status.latencyMs[stage] >= 0 && status.latencyMs[stage] < 5000, `latency stage ${stage} measured: ${status.latencyMs[stage]} ms`);

    // What the page shows is what the node renders for the pose in lastFrame: compared per eye with a direct
    // render of that pose (the head is still, so every frame shows the same pose).
    const shot = join(work, 'desktop.png');
    await page.evaluate(`document.getElementById('show-stats').click()`);  // the overlay off: the eyes only
    await sleep(400);
    const before2 = (await page.evaluate('window.kairo.status')).lastFrame;
    await screenshotCanvas(page, shot);
    const frame = (await page.evaluate('window.kairo.status')).lastFrame;
    check(poseArg(before2.pose) === poseArg(frame.pose), 'the pose did not change while the screenshot was taken');
    const reference = join(work, 'reference.png');
    execFileSync(kairo, ['render', '--scene', 'vr-room', '--size', '512x512', '--pose', poseArg(frame.pose), '--out', reference]);
    const eye = (/** @type {number} */ i) => ({ x: 512 * i, y: 0, w: 512, h: 512 });
    const left = psnrDb(shot, reference, eye(0), eye(0)), right = psnrDb(shot, reference, eye(1), eye(1));
    console.log(`  screenshot vs direct render: left ${left.toFixed(2)} dB, right ${right.toFixed(2)} dB`);
    check(left >= 28 && right >= 28, 'both eyes >= 28 dB');
    // The check can fail: the same render 2 degrees off, and the eyes swapped, are far below it.
    const turned = join(work, 'turned.png');
    const yaw = 2 * Math.PI / 180;
    const q = frame.pose.q, s = Math.sin(yaw / 2), c = Math.cos(yaw / 2);
    const turnedQ = [c * q[0] + s * q[2], c * q[1] + s * q[3], c * q[2] - s * q[0], c * q[3] - s * q[1]];
    execFileSync(kairo, ['render', '--scene', 'vr-room', '--size', '512x512', '--pose', poseArg({ p: frame.pose.p, q: turnedQ }), '--out', turned]);
    const turnedDb = psnrDb(shot, turned, eye(0), eye(0));
    const swappedDb = psnrDb(shot, reference, eye(0), eye(1));
    console.log(`  negatives: turned 2 degrees ${turnedDb.toFixed(2)} dB, eyes swapped ${swappedDb.toFixed(2)} dB`);
    check(turnedDb < 28 && swappedDb < left, 'a turned or swapped image fails the same check');

    // The node counts the browser's frames under its transport label, and none under udp.
    const metrics = await stack.metrics();
    check(nodeFrames(metrics, 'webrtc').sent > 0 && (nodeFrames(metrics, 'udp').sent ?? 0) === 0,
      'kairo_frames_total counts the frames as transport="webrtc"');

    // A browser that vanishes (killed: no goodbye) frees its session within 5 s.
    const id = status.sessionId;
    const token = await stack.token();
    browser.close();
    const gone = Date.now();
    let state = '';
    while (Date.now() - gone < 8000) {
      state = (await stack.api('GET', `/v1/sessions/${id}`, undefined, token)).body.state;
      if (state === 'ended' || state === 'failed') break;
      await sleep(100);
    }
    const freedMs = Date.now() - gone;
    console.log(`  session ${state} ${freedMs} ms after the browser was killed`);
    check(state === 'ended' && freedMs <= 5000, 'the vanished browser\'s session ended within 5 s');
  } finally {
    browser.close();
    stack.stop();
  }
}

/**
 * A signalling socket as an attacker or a broken client would use it.
 * @param {string} url @returns {Promise<{ws: WebSocket, messages: any[], closed: Promise<number>}>}
 */
async function openSocket(url) {
  const ws = new WebSocket(url, { maxPayload: 1 << 20 });
  /** @type {any[]} */
  const messages = [];
  ws.on('message', (d) => messages.push(JSON.parse(String(d))));
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, messages, closed };
}

/** @param {Promise<number>} closed */
const closesWithin = (closed, ms = 5000) => Promise.race([closed, sleep(ms).then(() => -1)]);

async function badSignalling() {
  const stack = await Stack.start(kairo);
  const browser = await Browser.launch();
  try {
    const page = await browser.newPage();
    await connect(page, stack, { size: 256, fps: 30 });
    await page.waitFor(`window.kairo.status.state === 'streaming' && window.kairo.status.framesDecoded > 10`, 60000);
    const victim = await page.evaluate('window.kairo.status.sessionId');
    const token = await stack.token();
    const other = (await stack.api('POST', '/v1/sessions', { scene: 'vr-room', eye_width: 256, eye_height: 256, fps: 30, transport: 'webrtc' }, token)).body;
    check(Boolean(other.signalling_url && other.signalling_credential) && !other.session_key,
      'a browser session\'s answer has the signalling URL and credential, and no datagram key');
    const url = other.signalling_url;
    const pose = { p: [0, 1.6, 0], q: [0, 0, 0, 1] };
    await sleep(600);  // the node picks the new session up

    // Another session's credential does not open the victim's session.
    let s = await openSocket(url);
    s.ws.send(JSON.stringify({ type: 'hello', session_id: victim, credential: other.signalling_credential, pose }));
    check(await closesWithin(s.closed) > 0 && s.messages[0]?.code === 'unauthorised', 'another session\'s credential is refused');
    // A wrong one neither.
    s = await openSocket(url);
    s.ws.send(JSON.stringify({ type: 'hello', session_id: victim, credential: 'f'.repeat(64), pose }));
    check(await closesWithin(s.closed) > 0 && s.messages[0]?.code === 'unauthorised', 'a wrong credential is refused');
    // Malformed JSON, and no hello at all.
    s = await openSocket(url);
    s.ws.send('{not json');
    check(await closesWithin(s.closed) > 0 && s.messages[0]?.code === 'malformed', 'malformed JSON is refused');
    // A 10 MiB message: refused by size, before it is parsed.
    s = await openSocket(url);
    s.ws.send('x'.repeat(10 * 1024 * 1024));
    const code = await closesWithin(s.closed);
    check(code === 1009 || code === 1006, `a 10 MiB message closes the socket (code ${code})`);
    // The right credential, then garbage SDP: refused with a clear error.
    s = await openSocket(url);
    s.ws.send(JSON.stringify({ type: 'hello', session_id: other.session_id, credential: other.signalling_credential, pose }));
    const deadline = Date.now() + 15000;
    while (!s.messages.some((m) => m.type === 'offer') && Date.now() < deadline) await sleep(50);
    check(s.messages[0]?.type === 'welcome' && s.messages.some((m) => m.type === 'offer'), 'the session\'s own credential gets an offer');
    s.ws.send(JSON.stringify({ type: 'answer', sdp: 'v=0\r\nthis is not SDP\r\n' }));
    await closesWithin(s.closed);
    const refusal = s.messages.find((m) => m.type === 'error');
    check(refusal?.code === 'bad_signalling', `garbage SDP is refused: "${refusal?.message}"`);

    // The victim's stream went on through all of it.
    const before = (await page.evaluate('window.kairo.status')).framesDecoded;
    await sleep(3000);
    const after = await page.evaluate('window.kairo.status');
    check(after.state === 'streaming' && after.framesDecoded > before + 20, `the other session kept streaming (${after.framesDecoded - before} frames in 3 s)`);
  } finally {
    browser.close();
    stack.stop();
  }
}

async function pageSecurity() {
  const stack = await Stack.start(kairo);
  try {
    const r = await fetch(stack.url);
    const csp = r.headers.get('content-security-policy') ?? '';
    check(r.status === 200 && (await r.text()).includes('id="connect"'), 'the control plane serves the page at /');
    check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline') && csp.includes("default-src 'none'"), `strict CSP: ${csp}`);
    check((await fetch(stack.url + 'web/../../etc/passwd')).status === 404 && (await fetch(stack.url + 'web/nothing.js')).status === 404,
      'only the built-in files are served');
    const js = await (await fetch(stack.url + 'web/app.js')).text();
    check(!/localStorage|sessionStorage|document\.cookie/.test(js + await (await fetch(stack.url + 'web/api.js')).text()),
      'no credential storage in the page');
  } finally {
    stack.stop();
  }
}

await run([
  ['page_security', pageSecurity],
  ['desktop_view', desktopView],
  ['bad_signalling', badSignalling],
]);
