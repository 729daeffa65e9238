// The demo's browser step (scripts/run-demo.sh): opens the page the control plane serves in headless
// Chromium, logs in, connects a browser session and saves a screenshot of the page showing the stream.
// Usage: node web/test/demo_browser.mjs URL USER SCREENSHOT.png [SECONDS]   (the password in KAIRO_PASSWORD)
import { writeFileSync } from 'node:fs';
import { Browser } from './cdp.mjs';
import { sleep } from './harness.mjs';

const [url, user, out, seconds] = process.argv.slice(2);
const browser = await Browser.launch();
let code = 0;
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.type('username', user);
  await page.type('password', process.env.KAIRO_PASSWORD ?? '');
  await page.type('room', 'demo');
  await page.click('connect');
  await page.waitFor(`window.kairo.status.state === 'streaming' && window.kairo.status.framesDecoded > 10`, 60000);
  await sleep(1000 * Number(seconds ?? 8));
  const s = await page.evaluate('window.kairo.status');
  writeFileSync(out, await page.screenshot());
  console.log(`demo: browser (headless Chromium, WebRTC): ${s.framesDecoded} frames decoded, ${s.framesDropped} dropped, ` +
    `${s.fps.toFixed(1)} fps, ${(s.bitrateBps / 1e6).toFixed(2)} Mbit/s, pose -> drawn p50 ${s.latencyMs.total} ms; screenshot ${out}`);
} catch (e) {
  console.error(`demo: the browser step failed: ${e instanceof Error ? e.message : e}`);
  code = 1;
} finally {
  browser.close();
}
process.exit(code);
