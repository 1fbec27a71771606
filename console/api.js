// The public API, with the built-in bearer token kept for this tab only (sessionStorage,
// never a cookie): closing the tab signs out.

const TOKEN = 'vpsgate.token';
const PRINCIPAL = 'vpsgate.principal';

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
  set(token, principal) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(PRINCIPAL, principal);
  },
  clear() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(PRINCIPAL);
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
    credentials: 'omit', cache: 'no-store', redirect: 'error',
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
