// The signed-in session: the access token and what its claims say about the caller.
// Kept in sessionStorage (this tab only, gone when it closes), never in a cookie or the URL.

const KEY = 'trustmail.session';

/** The current session, or null when signed out or the token has expired. */
export function session() {
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(KEY));
  } catch {
    saved = null;
  }
  if (!saved || typeof saved.token !== 'string' || !(saved.expiresAt > Date.now())) return null;
  return saved;
}

/**
 * Starts a session with TOKEN. Its claims (`role`, `env`, `sub`, `exp`, issued by
 * POST /{environmentId}/as/token) only decide which controls show; the API checks every call.
 */
export function start(token) {
  const claims = claimsOf(token);
  const saved = {
    token,
    role: claims.role,
    environmentId: claims.env,
    clientId: claims.sub,
    expiresAt: claims.exp * 1000,
  };
  sessionStorage.setItem(KEY, JSON.stringify(saved));
  return saved;
}

/** Signs out: the token is forgotten. */
export function end() {
  sessionStorage.removeItem(KEY);
}

export const isOrganizationAdmin = (s) => s?.role === 'ORGANIZATION_ADMIN';
/** READ_ONLY sees no write controls. */
export const canWrite = (s) => s?.role === 'ORGANIZATION_ADMIN' || s?.role === 'ENVIRONMENT_ADMIN';

function claimsOf(token) {
  const payload = token.split('.')[1] ?? '';
  const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
  const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}
