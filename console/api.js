// The API client: same origin, the bearer token from the session, errors as ApiError carrying the
// P1Error's message and details (or the token endpoint's OAuth error_description).

import { session } from './session.js';

export class ApiError extends Error {
  constructor(status, message, details = [], retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

/**
 * METHOD PATH with the session's token. JSON bodies go as `json` (Content-Type `type`, default
 * application/json); `raw` answers the Response itself (downloads). 204 answers null.
 */
export async function api(method, path, { json, type, raw = false, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const current = session();
  if (current) headers.Authorization = `Bearer ${current.token}`;
  let body;
  if (json !== undefined) body = JSON.stringify(json);
  if (json !== undefined || type) headers['Content-Type'] = type ?? 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal, credentials: 'omit', cache: 'no-store' });
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new ApiError(0, 'trustmail could not be reached. Check the connection and try again.');
  }
  if (!response.ok) {
    const err = await errorOf(response);
    // A token that expired or was revoked: back to sign-in, saying why.
    if (response.status === 401 && current) {
      window.dispatchEvent(new CustomEvent('session-ended', { detail: err.message }));
    }
    throw err;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/** The ApiError for a failed RESPONSE. */
export async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const seconds = Number.parseInt(response.headers.get('Retry-After') ?? '', 10);
  const retryAfter = Number.isFinite(seconds) ? seconds : null;
  const message = body?.message ?? body?.error_description ?? body?.error
    ?? `The request failed (HTTP ${response.status}).`;
  const details = Array.isArray(body?.details) ? body.details.map((d) => d.message).filter(Boolean) : [];
  return new ApiError(response.status, message, details, retryAfter);
}

/** Every item of a HAL list: `_embedded[name]`. */
export const embedded = (list, name) => list?._embedded?.[name] ?? [];

/** The path of an environment, or of something under it. */
export const envPath = (environmentId, rest = '') =>
  `/v1/environments/${encodeURIComponent(environmentId)}${rest}`;
