// Runs graphql-http's server audits against a gateway and prints one JSON line per audit.
// Usage: node audit.mjs URL [TOKEN]  (with TOKEN, every request carries `Authorization: Bearer TOKEN`)
import { serverAudits } from 'graphql-http';

const [url, token] = process.argv.slice(2);
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  if (token) headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const results = [];
for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason ?? null });
}
for (const result of results) console.log(JSON.stringify(result));
