// The bearer token, kept for this browser tab only (sessionStorage): never in a cookie, never in localStorage.

const KEY = 'privacy-gateway.token';

export function savedToken() {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null; // storage disabled: the user signs in again on each load
  }
}

export function saveToken(token) {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // storage disabled: the token lives in memory only
  }
}

export function forgetToken() {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // nothing stored
  }
}

/** The token's claims (its JWT payload), unverified: the server verifies every request. */
export function claimsOf(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/** The user a token speaks for (its `sub`), or null when it is not a token with one. */
export function subjectOf(token) {
  const claims = claimsOf(token);
  return claims && typeof claims.sub === 'string' && claims.sub ? claims.sub : null;
}
