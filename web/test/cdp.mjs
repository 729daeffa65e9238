// A headless Chromium (Debian's chromium-headless-shell) driven over the DevTools protocol: just what the
// browser tests need (open a page, evaluate, type, click, screenshot), on the `ws` package. The browser runs
// in its own process group with a throwaway profile, and is killed with the group (Debian's
// /usr/bin/chromium-headless-shell is a wrapper that does not exec, so the real binary is started).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

const kCandidates = [process.env.KAIRO_CHROMIUM, '/usr/lib/chromium/chromium-headless-shell', '/usr/lib/chromium/chromium'];

export function chromiumPath() {
  for (const c of kCandidates) if (c && existsSync(c)) return c;
  throw new Error('no Chromium: install Debian\'s chromium-headless-shell (scripts/setup.sh does)');
}

export class Browser {
  /** @param {{args?: string[]}} [options] */
  static async launch(options = {}) {
    const profile = mkdtempSync(join(tmpdir(), 'kairo-chromium-'));
    const args = [
      '--headless', '--no-sandbox', '--disable-gpu', '--use-gl=angle', '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-extensions', '--mute-audio',
      '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns', '--remote-debugging-port=0', `--user-data-dir=${profile}`,
      '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows', '--window-size=1280,900', ...(options.args ?? []), 'about:blank',
    ];
    const child = spawn(chromiumPath(), args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    const url = await new Promise((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`Chromium did not start: ${text.slice(-500)}`)), 20000);
      child.stderr.on('data', (d) => {
        text += d;
        const m = text.match(/DevTools listening on (ws:\/\/\S+)/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.on('exit', (code) => reject(new Error(`Chromium exited (${code}): ${text.slice(-500)}`)));
    });
    const browser = new Browser(child, profile, new WebSocket(url, { maxPayload: 256 * 1024 * 1024 }));
    await new Promise((resolve, reject) => {
      browser.ws.once('open', resolve);
      browser.ws.once('error', reject);
    });
    return browser;
  }

  /** @param {import('node:child_process').ChildProcess} child @param {string} profile @param {WebSocket} ws */
  constructor(child, profile, ws) {
    this.child = child;
    this.profile = profile;
    this.ws = ws;
    this.nextId = 1;
    /** @type {Map<number, {resolve: Function, reject: Function}>} */
    this.pending = new Map();
    /** @type {((m: any) => void)[]} */
    this.listeners = [];
    ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      if (m.id && this.pending.has(m.id)) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) p.reject(new Error(`${m.error.message} ${m.error.data ?? ''}`));
        else p.resolve(m.result);
      } else {
        for (const l of this.listeners) l(m);
      }
    });
  }

  /** @param {string} method @param {object} [params] @param {string} [sessionId] */
  send(method, params = {}, sessionId = undefined) {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  /** A new tab. @param {{width?: number, height?: number}} [size] */
  async newPage(size = {}) {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(this, sessionId);
    await page.send('Page.enable');
    await page.send('Runtime.enable');
    await page.send('Emulation.setDeviceMetricsOverride', { width: size.width ?? 1280, height: size.height ?? 900,
      deviceScaleFactor: 1, mobile: false });
    return page;
  }

  close() {
    try {
      this.ws.close();
    } catch {}
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {}
    rmSync(this.profile, { recursive: true, force: true });
  }
}

export class Page {
  /** @param {Browser} browser @param {string} sessionId */
  constructor(browser, sessionId) {
    this.browser = browser;
    this.sessionId = sessionId;
    /** @type {string[]} */
    this.console = [];
    browser.listeners.push((m) => {
      if (m.sessionId !== sessionId) return;
      if (m.method === 'Runtime.consoleAPICalled')
        this.console.push(m.params.args.map((/** @type {any} */ a) => a.value ?? a.description).join(' '));
      if (m.method === 'Runtime.exceptionThrown') this.console.push(`exception: ${m.params.exceptionDetails.exception?.description ?? m.params.exceptionDetails.text}`);
    });
  }

  /** @param {string} method @param {object} [params] */
  send(method, params = {}) {
    return this.browser.send(method, params, this.sessionId);
  }

  /** @param {string} url */
  async goto(url) {
    await this.send('Page.navigate', { url });
    await this.waitFor('document.readyState === "complete"', 15000);
  }

  /** @param {string} expression @returns {Promise<any>} */
  async evaluate(expression) {
    const r = await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`evaluate ${expression}: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value;
  }

  /** Polls until the expression is truthy. @param {string} expression @param {number} timeoutMs */
  async waitFor(expression, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.evaluate(expression).catch(() => false);
      if (v) return v;
      if (Date.now() > deadline) {
        const state = await this.evaluate('JSON.stringify(window.kairo?.status ?? null)').catch(() => '?');
        throw new Error(`timed out after ${timeoutMs} ms waiting for: ${expression}\n  page status: ${state}\n  console: ${this.console.slice(-10).join('\n    ')}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Types into a field by id (clears it first). @param {string} id @param {string} text */
  async type(id, text) {
    await this.evaluate(`(() => { const e = document.getElementById(${JSON.stringify(id)}); e.focus(); e.value = ''; })()`);
    await this.send('Input.insertText', { text });
  }

  /** Clicks an element by id, as a user does (a real mouse event at its centre). @param {string} id */
  async click(id) {
    const box = await this.evaluate(`(() => { const r = document.getElementById(${JSON.stringify(id)}).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`);
    for (const type of ['mousePressed', 'mouseReleased'])
      await this.send('Input.dispatchMouseEvent', { type, x: box[0], y: box[1], button: 'left', clickCount: 1 });
  }

  /** PNG bytes of the page or a clip. @param {{x: number, y: number, width: number, height: number}} [clip] */
  async screenshot(clip) {
    const r = await this.send('Page.captureScreenshot', { format: 'png', ...(clip ? { clip: { ...clip, scale: 1 } } : {}) });
    return Buffer.from(r.data, 'base64');
  }
}
