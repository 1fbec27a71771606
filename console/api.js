// The public API, with the built-in bearer token kept for this tab only (sessionStorage,
// never a cookie): closing the tab signs out. Where nginx authenticates client certificates
// (nginx/auth/mtls/), the browser's certificate is the identity: no token is kept, only the
// principal it names, and requests go without Authorization.

const TOKEN = 'vpsgate.token';
const PRINCIPAL = 'vpsgate.principal';
const CERTIFICATE = 'vpsgate.certificate';

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN); },
  get principal() { return sessionStorage.getItem(PRINCIPAL); },
  /** Signed in by the browser's client certificate (no token kept). */
  get byCertificate() { return sessionStorage.getItem(CERTIFICATE) === '1'; },
  get signedIn() { return Boolean(this.token) || this.byCertificate; },
  set(token, principal) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(PRINCIPAL, principal);
    sessionStorage.removeItem(CERTIFICATE);
  },
  setCertificate(principal) {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.setItem(PRINCIPAL, principal);
    sessionStorage.setItem(CERTIFICATE, '1');
  },
  clear() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(PRINCIPAL);
    sessionStorage.removeItem(CERTIFICATE);
  },
};

/** One request; JSON in and out. Throws ApiError for an HTTP error, with its problem. */
export async function api(method, path, { body, token = session.token, signal, key } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (key) headers['Idempotency-Key'] = key;
  const response = await fetch(path, {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
    // With a token, nothing ambient goes along. Without one, the request may carry the TLS
    // client certificate, which the Fetch standard counts among credentials (never cookies:
    // vpsgate sets none, and nginx refuses certificate requests another site started).
    credentials: token ? 'omit' : 'same-origin', cache: 'no-store', redirect: 'error',
  });
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { title: text.slice(0, 200) }; }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Checks a token with GET /v1/me; keeps it for the tab when it is valid. */
export async function signIn(token) {
  const me = await api('GET', '/v1/me', { token });
  session.set(token, me.principal);
  return me;
}

/** GET /v1/me without a token: 200 where nginx verified the browser's client certificate
 * (signed in as its subject), an ApiError 401 otherwise. */
export async function signInWithCertificate() {
  const me = await api('GET', '/v1/me', { token: null });
  if (!session.signedIn) session.setCertificate(me.principal);  // a token signed in meanwhile stays
  return me;
}
