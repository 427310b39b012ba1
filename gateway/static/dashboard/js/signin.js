// The sign-in view: a bearer-token field and, on a demo server, its creators to pick.

import { demoCreators } from './api.js';
import { byId, h, replace } from './dom.js';
import { integer } from './format.js';
import { subjectOf } from './session.js';

let demoLoaded = false;

/** Wires the form; `onToken(token)` signs in. */
export function initSignIn(onToken) {
  byId('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = byId('token-input');
    const token = input.value.trim().replace(/^Bearer\s+/i, '');
    if (!token) {
      showSignInError('Paste a token first.');
      input.focus();
      return;
    }
    if (!subjectOf(token)) {
      showSignInError('That is not a token this dashboard can read: it names no user.');
      input.focus();
      return;
    }
    input.value = '';
    onToken(token);
  });
}

export function showSignInError(message) {
  const node = byId('signin-error');
  node.textContent = message ?? '';
  node.hidden = !message;
}

/** Shows the view; lists the demo's creators the first time the server offers them. */
export async function showSignIn(onToken, message = null) {
  byId('signin-view').hidden = false;
  showSignInError(message);
  if (demoLoaded) return;
  const creators = await demoCreators();
  demoLoaded = true;
  if (!creators.length) return;
  replace(byId('demo-list'), creators.map((creator) => h('li', {},
    h('button', {
      type: 'button',
      class: 'demo-creator',
      'data-testid': 'demo-creator',
      'data-creator-id': creator.id,
      onclick: () => onToken(creator.token),
    }, h('strong', {}, creator.id), h('span', { class: 'hint' }, ` · ${integer(creator.videos)} ${creator.videos === 1 ? 'video' : 'videos'}`)))));
  byId('demo-creators').hidden = false;
}

export function hideSignIn() {
  byId('signin-view').hidden = true;
  showSignInError(null);
}
