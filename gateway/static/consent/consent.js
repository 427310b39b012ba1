// The consent page: sends the signed-in user's decision with their bearer token, then follows the
// redirect the gateway answers with. The token is the dashboard's (sessionStorage, this tab only),
// or one pasted here; it is sent to this server only, never to the app.

const KEY = 'privacy-gateway.token';

function savedToken() {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

function subjectOf(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(padded), (c) => c.charCodeAt(0))));
    return typeof claims.sub === 'string' ? claims.sub : null;
  } catch {
    return null;
  }
}

const form = document.getElementById('decision');
const tokenInput = document.getElementById('token');
const errorLine = document.getElementById('error');
const buttons = [document.getElementById('approve'), document.getElementById('deny')];

const saved = savedToken();
if (saved && subjectOf(saved)) {
  const who = document.getElementById('who');
  who.textContent = `Signed in as ${subjectOf(saved)}.`;
  who.hidden = false;
} else {
  document.getElementById('signin').hidden = false;
}

function token() {
  return (saved && subjectOf(saved)) ? saved : tokenInput.value.trim();
}

async function decide(decision) {
  errorLine.textContent = '';
  const bearer = token();
  if (!bearer) {
    errorLine.textContent = 'Sign in first: paste your platform token.';
    return;
  }
  const body = new URLSearchParams();
  for (const input of form.querySelectorAll('input[type=hidden]')) body.append(input.name, input.value);
  body.append('decision', decision);
  buttons.forEach((button) => { button.disabled = true; });
  try {
    const response = await fetch('/oauth/authorize', {
      method: 'POST',
      headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body,
    });
    const answer = await response.json().catch(() => ({}));
    if (response.ok && typeof answer.redirect_to === 'string') {
      window.location.assign(answer.redirect_to);
      return;
    }
    errorLine.textContent = (answer.error && answer.error.message) || `The gateway refused (${response.status}).`;
  } catch {
    errorLine.textContent = 'The gateway could not be reached; try again.';
  }
  buttons.forEach((button) => { button.disabled = false; });
}

document.getElementById('approve').addEventListener('click', () => decide('approve'));
document.getElementById('deny').addEventListener('click', () => decide('deny'));
