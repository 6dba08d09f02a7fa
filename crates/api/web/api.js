// The API client the pages share: fetch with the bearer token, problem+json
// turned into the sentence it carries, the session in sessionStorage, and the
// waiting room's event stream. It uses only the public HTTP API.

const TOKEN_KEY = 'booking.token';
const EMAIL_KEY = 'booking.email';

/** An answer of the API that was not 2xx (or no answer at all). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `request failed (${status})`);
    this.status = status;
    this.kind = problem.type || '';
    this.problem = problem;
  }

  /** The problem's short name, e.g. `seat-taken` from `/problems/seat-taken`. */
  get slug() {
    return this.kind.split('/').pop();
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  get email() {
    return sessionStorage.getItem(EMAIL_KEY);
  },
  save(token, email) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(EMAIL_KEY, email);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(EMAIL_KEY);
  },
};

/**
 * Calls the API. `body` is sent as JSON; `headers` are added. Resolves to the
 * parsed JSON (or null for an empty body); rejects with an ApiError carrying
 * the problem's sentence. A 401 ends the session.
 */
export async function request(method, path, { body, headers = {} } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers } };
  if (session.token) init.headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { detail: 'The server cannot be reached. Check the connection and try again.' });
  }
  if (!response.ok) throw await problemOf(response);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

async function problemOf(response) {
  if (response.status === 401) session.clear();
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    problem = { title: response.statusText };
  }
  return new ApiError(response.status, problem);
}

export const get = (path, options) => request('GET', path, options);
export const post = (path, body, options = {}) => request('POST', path, { ...options, body });
export const put = (path, body, options = {}) => request('PUT', path, { ...options, body });
export const del = (path, options) => request('DELETE', path, options);

/**
 * GET with `If-None-Match`: resolves to `{ etag, body }` when the resource
 * changed since `etag`, or null on 304. Cheap enough to poll every second.
 */
export async function getIfChanged(path, etag) {
  const headers = { Accept: 'application/json' };
  if (etag) headers['If-None-Match'] = etag;
  const response = await fetch(path, { headers, cache: 'no-store' });
  if (response.status === 304) return null;
  if (!response.ok) throw await problemOf(response);
  return { etag: response.headers.get('ETag'), body: await response.json() };
}

/** A fresh key per user action: a retry of the same action reuses it. */
export function idempotencyKey() {
  return crypto.randomUUID();
}

export async function logIn(email, password) {
  const { token } = await post('/api/auth/login', { email, password });
  session.save(token, email);
  return token;
}

export async function signUp(email, password, nickname) {
  await post('/api/auth/signup', { email, password, nickname });
  return logIn(email, password);
}

export function logOut() {
  session.clear();
}

/**
 * Opens the waiting room's event stream for one schedule. `handlers` maps
 * event names (`position`, `admitted`, `sold-out`, `left`) to functions of
 * the parsed `data`; `onError` hears a stream that broke. Resolves to a
 * function that closes the stream.
 */
export async function queueEvents(scheduleId, handlers, onError) {
  const { ticket } = await post('/api/queue/stream-ticket', { scheduleId });
  const query = new URLSearchParams({ scheduleId, ticket });
  const source = new EventSource(`/api/queue/events?${query}`);
  for (const [name, handle] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handle(JSON.parse(event.data)));
  }
  source.onerror = () => {
    // The server ends the stream after a final event; EventSource would reconnect.
    if (source.readyState !== EventSource.CLOSED) source.close();
    onError?.();
  };
  return () => source.close();
}
