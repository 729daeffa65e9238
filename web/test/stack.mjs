// Kairo on loopback for the browser tests: a throwaway PostgreSQL (`kairo devdb`), the control plane (which
// serves the page) and one node, each on a port the kernel chose (read back from what the process prints),
// stopped together. Secrets travel in the environment, never in argv.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Starts a process and resolves with the first match of `pattern` in its stderr (or stdout).
 * @param {string} command @param {string[]} args @param {NodeJS.ProcessEnv} env @param {RegExp} pattern
 * @param {number} timeoutMs @param {string[]} log
 */
function startAndWait(command, args, env, pattern, timeoutMs, log) {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const result = new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start in ${timeoutMs} ms:\n${text.slice(-2000)}`)), timeoutMs);
    const onData = (/** @type {Buffer} */ d) => {
      text += d;
      log.push(...String(d).split('\n').filter(Boolean).map((l) => `[${args[0]}] ${l}`));
      const m = text.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited (${code}):\n${text.slice(-2000)}`));
    });
  });
  return { child, result };
}

export class Stack {
  /**
   * @param {string} kairo the kairo binary
   * @param {{nodes?: number, nodeArgs?: string[], maxSessions?: number, tls?: {cert: string, key: string}}} [options]
   *   tls: the control plane on HTTPS and the node's signalling on WSS, with this certificate
   */
  static async start(kairo, options = {}) {
    const stack = new Stack();
    const password = randomBytes(12).toString('hex');
    stack.user = 'webtest';
    stack.password = password;
    stack.runDir = mkdtempSync(join(tmpdir(), 'kairo-webtest-'));
    const env = {
      ...process.env,
      KAIRO_NODE_TOKEN: randomBytes(24).toString('hex'),
      KAIRO_BOOTSTRAP_ADMIN: `${stack.user}:${password}`,
      KAIRO_RUN_DIR: stack.runDir,
    };
    try {
      const db = startAndWait(kairo, ['devdb'], env, /(postgres(?:ql)?:\/\/\S+)/, 60000, stack.log);
      stack.children.push(db.child);
      const dbUrl = (await db.result)[1];
      const tls = options.tls;
      const control = startAndWait(kairo, ['control', '--db', dbUrl, '--listen', '127.0.0.1:0', '--log-level', 'info',
        ...(tls ? ['--tls-cert', tls.cert, '--tls-key', tls.key] : [])], env, /listening on \S+ port (\d+)/, 30000, stack.log);
      stack.children.push(control.child);
      stack.controlPort = Number((await control.result)[1]);
      stack.url = `${tls ? 'https' : 'http'}://127.0.0.1:${stack.controlPort}/`;
      for (let i = 0; i < (options.nodes ?? 1); ++i) {
        const node = startAndWait(kairo, ['node', '--control', stack.url.slice(0, -1), '--listen-udp', '127.0.0.1:0',
          '--metrics', '127.0.0.1:0', '--max-sessions', String(options.maxSessions ?? 4), '--log-level', 'info',
          ...(tls ? ['--ca-file', tls.cert, '--signalling-tls-cert', tls.cert, '--signalling-tls-key', tls.key] : []),
          ...(options.nodeArgs ?? [])], env, /registered as id (\d+)/, 120000, stack.log);
        stack.children.push(node.child);
        await node.result;
        const ports = stack.log.join('\n').match(/metrics port (\d+)/g) ?? [];
        stack.metricsPorts = ports.map((p) => Number(p.split(' ').pop()));
      }
    } catch (e) {
      stack.stop();
      throw e;
    }
    return stack;
  }

  constructor() {
    /** @type {import('node:child_process').ChildProcess[]} */
    this.children = [];
    /** @type {string[]} */
    this.log = [];
    this.url = '';
    this.controlPort = 0;
    /** @type {number[]} */
    this.metricsPorts = [];
    this.user = '';
    this.password = '';
    this.runDir = '';
  }

  /** The node's Prometheus text. @param {number} [i] */
  async metrics(i = 0) {
    const r = await fetch(`http://127.0.0.1:${this.metricsPorts[i]}/metrics`);
    return r.text();
  }

  /** @param {string} method @param {string} path @param {object} [body] @param {string} [token] */
  async api(method, path, body, token) {
    const r = await fetch(this.url + path.replace(/^\//, ''), {
      method, headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : {}, headers: r.headers };
  }

  async token() {
    const r = await this.api('POST', '/v1/auth/login', { username: this.user, password: this.password });
    return r.body.access_token;
  }

  stop() {
    for (const c of this.children.reverse()) {
      try {
        c.kill('SIGTERM');
      } catch {}
    }
    this.children = [];
    if (this.runDir) rmSync(this.runDir, { recursive: true, force: true });
  }
}
