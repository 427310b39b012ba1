// Talking to this server: /graphql as any frontend does (bearer token, JSON), and the demo's creators.

/** The request as a whole was refused: signed out, unavailable, out of budget, or not JSON. */
export class RequestFailed extends Error {
  constructor(message, { status = 0, code = null, retryAfter = null } = {}) {
    super(message);
    this.name = 'RequestFailed';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  get unauthenticated() {
    return this.status === 401 || this.code === 'UNAUTHENTICATED';
  }
}

async function json(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/**
 * POSTs one operation. Resolves with {data, errors, privacy} whenever the server answered GraphQL
 * (a field refused by the policy is an error beside the data, not a failure); rejects with
 * RequestFailed when there is no answer to show: 401, 429, 503, a network failure.
 */
export async function graphql(token, query, variables = {}) {
  let response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      credentials: 'omit',
      cache: 'no-store',
      headers: {
        Accept: 'application/json',
        'Content-Type': 'application/json',
        Authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new RequestFailed('The server could not be reached. Check your connection and try again.');
  }
  const body = await json(response);
  const errors = Array.isArray(body?.errors) ? body.errors : [];
  const first = errors[0];
  const code = first?.extensions?.code ?? null;
  const retryAfter = response.headers.get('Retry-After');
  if (!body || typeof body !== 'object') {
    throw new RequestFailed(`The server answered ${response.status} without data.`, { status: response.status, retryAfter });
  }
  if (response.status === 401 || response.status === 429 || response.status >= 500 || !('data' in body)) {
    throw new RequestFailed(first?.message ?? `The server answered ${response.status}.`, { status: response.status, code, retryAfter });
  }
  return { data: body.data ?? null, errors, privacy: body.extensions?.privacy ?? null };
}

/** The demo's creators with their tokens, or [] where the server offers none (not a demo). */
export async function demoCreators() {
  let response;
  try {
    response = await fetch('/demo/creators', { credentials: 'omit', cache: 'no-store', headers: { Accept: 'application/json' } });
  } catch {
    return [];
  }
  if (!response.ok) return [];
  const body = await json(response);
  return Array.isArray(body?.creators) ? body.creators.filter((c) => typeof c?.id === 'string' && typeof c?.token === 'string') : [];
}

/** The error the answer carries at `path` (a response path, aliases included), or, when the whole
 * operation was refused (no data), the first error with no path or the first at all. */
export function errorAt(answer, path) {
  const wanted = path.join('.');
  const exact = answer.errors.find((error) => Array.isArray(error.path) && error.path.join('.') === wanted);
  if (exact) return exact;
  const above = answer.errors.find((error) => Array.isArray(error.path) && wanted.startsWith(`${error.path.join('.')}.`));
  if (above) return above;
  if (answer.data === null) return answer.errors.find((error) => !error.path) ?? answer.errors[0] ?? null;
  return null;
}
