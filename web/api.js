// @ts-check
// The control plane's API as the page uses it (docs/control-api.md). The access token lives in this module's
// memory only (never in storage or URLs); the refresh token is rotated as the API does it: each refresh
// answers a new pair and the old refresh token stops working.

/** @typedef {{access_token: string, refresh_token: string, expires_in: number}} TokenPair */
/**
 * @typedef {{session_id: string, state: string, node_address?: string, signalling_url?: string,
 *   signalling_credential?: string, failure_reason?: string, transport?: string}} Session
 */

/** An API refusal, with the API's code and message. */
export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor() {
    /** @type {TokenPair | null} */
    this.tokens = null;
    this.refreshAt = 0;
  }

  /** @param {string} username @param {string} password */
  async login(username, password) {
    this.keep(await this.call('POST', '/v1/auth/login', { username, password }, false));
  }

  /** @param {TokenPair} pair */
  keep(pair) {
    this.tokens = pair;
    // Refresh a little before the access token expires.
    this.refreshAt = performance.now() + Math.max(5, pair.expires_in - 30) * 1000;
  }

  async refreshIfDue() {
    if (!this.tokens || performance.now() < this.refreshAt) return;
    this.keep(await this.call('POST', '/v1/auth/refresh', { refresh_token: this.tokens.refresh_token }, false));
  }

  async logout() {
    if (!this.tokens) return;
    const refresh_token = this.tokens.refresh_token;
    this.tokens = null;
    await this.call('POST', '/v1/auth/logout', { refresh_token }, false).catch(() => {});
  }

  /**
   * @param {{scene: string, eye_width: number, eye_height: number, fps: number, room?: string}} shape
   * @returns {Promise<Session>}
   */
  async createSession(shape) {
    await this.refreshIfDue();
    return this.call('POST', '/v1/sessions', { ...shape, transport: 'webrtc', codec: 'h264' }, true);
  }

  /**
   * The catalogue's scene names (docs/scenes.md), first page: what the scene field suggests after login.
   * @returns {Promise<string[]>}
   */
  async sceneNames() {
    await this.refreshIfDue();
    /** @type {{name: string}[]} */
    const versions = await this.call('GET', '/v1/scenes?limit=1000', undefined, true);
    return [...new Set(versions.map((v) => v.name))];
  }

  /** @param {string} id @returns {Promise<Session>} */
  async session(id) {
    await this.refreshIfDue();
    return this.call('GET', `/v1/sessions/${encodeURIComponent(id)}`, undefined, true);
  }

  /** @param {string} id */
  async endSession(id) {
    await this.refreshIfDue();
    await this.call('DELETE', `/v1/sessions/${encodeURIComponent(id)}`, undefined, true);
  }

  /**
   * @param {string} method @param {string} path @param {object | undefined} body @param {boolean} authorised
   * @returns {Promise<any>}
   */
  async call(method, path, body, authorised) {
    /** @type {Record<string, string>} */
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (authorised && this.tokens) headers.Authorization = `Bearer ${this.tokens.access_token}`;
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
    const text = await response.text();
    const answer = text ? JSON.parse(text) : {};
    if (!response.ok) {
      const e = answer.error || {};
      throw new ApiError(response.status, e.code || 'http_' + response.status, e.message || response.statusText);
    }
    return answer;
  }
}

/**
 * The reason in plain words for an API refusal.
 * @param {unknown} e
 */
export function explain(e) {
  if (e instanceof ApiError) {
    switch (e.code) {
      case 'no_capacity':
        return 'No capacity: every node that has this scene is busy. Try again in a moment.';
      case 'room_unavailable':
        return `The room cannot take you: ${e.message}`;
      case 'unauthorized':
      case 'invalid_credentials':
        return 'The user name or password is wrong.';
      default:
        return `The control plane refused: ${e.message} (${e.code})`;
    }
  }
  return e instanceof Error ? e.message : String(e);
}
