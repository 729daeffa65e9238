// What the browser tests share: a named check that throws with the measured value, image comparison through
// the ffmpeg CLI (PSNR per region), the page's login-and-connect as a user does it, and the node's frame
// counters read from its metrics.
import { spawnSync } from 'node:child_process';

/** @param {boolean} ok @param {string} what */
export function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`  ok: ${what}`);
}

export const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/**
 * PSNR (dB, over RGB) between the same rectangle of two images, by ffmpeg's psnr filter.
 * @param {string} a @param {string} b @param {{x: number, y: number, w: number, h: number}} ra
 * @param {{x: number, y: number, w: number, h: number}} rb
 */
export function psnr(a, b, ra, rb) {
  const graph = `[0:v]crop=${ra.w}:${ra.h}:${ra.x}:${ra.y},format=rgb24[a];` +
    `[1:v]crop=${rb.w}:${rb.h}:${rb.x}:${rb.y},format=rgb24,scale=${ra.w}:${ra.h}[b];[a][b]psnr`;
  const r = spawnSync('ffmpeg', ['-hide_banner', '-nostats', '-i', a, '-i', b, '-lavfi', graph, '-f', 'null', '-'],
    { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`;
}

/** @param {string} a @param {string} b @param {any} ra @param {any} rb @returns {number} */
export function psnrDb(a, b, ra, rb) {
  const text = psnr(a, b, ra, rb);
  const m = text.match(/average:([0-9.]+|inf)/);
  if (!m) throw new Error(`ffmpeg psnr said nothing: ${text.slice(-500)}`);
  return m[1] === 'inf' ? 100 : Number(m[1]);
}

/**
 * Logs in through the form and connects, as a person does.
 * @param {import('./cdp.mjs').Page} page @param {import('./stack.mjs').Stack} stack
 * @param {{size?: number, fps?: number, room?: string, scene?: string}} [o]
 */
export async function connect(page, stack, o = {}) {
  await page.goto(stack.url);
  await page.type('username', stack.user);
  await page.type('password', stack.password);
  await page.type('scene', o.scene ?? 'vr-room');
  await page.type('room', o.room ?? '');
  await page.type('fps', String(o.fps ?? 30));
  await page.evaluate(`document.getElementById('size').value = '${o.size ?? 512}'`);
  await page.click('connect');
}

/** The node's frame counters for a transport, from its Prometheus text. @param {string} text @param {string} transport */
export function nodeFrames(text, transport) {
  /** @type {Record<string, number>} */
  const out = {};
  const re = new RegExp(`^kairo_frames_total\\{outcome="(\\w+)",transport="${transport}"\\} (\\d+)`, 'gm');
  for (const m of text.matchAll(re)) out[m[1]] = Number(m[2]);
  return out;
}

/**
 * Runs named tests in order; prints each and fails the process if any failed.
 * @param {[string, () => Promise<void>][]} tests
 */
export async function run(tests) {
  const only = process.argv[3];
  let failed = 0;
  for (const [name, body] of tests) {
    if (only && only !== name) continue;
    const start = Date.now();
    console.log(`[ RUN  ] ${name}`);
    try {
      await body();
      console.log(`[  OK  ] ${name} (${Date.now() - start} ms)`);
    } catch (e) {
      failed += 1;
      console.log(`[FAILED] ${name}: ${e instanceof Error ? e.stack : e}`);
    }
  }
  process.exit(failed ? 1 : 0);
}
