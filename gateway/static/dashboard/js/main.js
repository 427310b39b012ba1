// Wiring: who is signed in, which video the address names (#video=<id>), and which view shows.

import { clearActivity, initActivity, showActivity } from './activity.js';
import { byId } from './dom.js';
import { renderPrivacy } from './privacy.js';
import { forgetToken, saveToken, savedToken, subjectOf } from './session.js';
import { hideSignIn, initSignIn, showSignIn } from './signin.js';
import { clearVideo, showVideo } from './video.js';
import { clearVideos, initVideos, loadCreator, markSelected } from './videos.js';

let session = null; // {token, viewer}

function setStatus(message, isError = false) {
  const status = byId('status');
  status.textContent = message ?? '';
  status.classList.toggle('error', Boolean(message) && isError);
}

function videoInHash() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const id = params.get('video');
  return id ? id.trim() : null;
}

function openVideo(id) {
  if (!session) return;
  markSelected(id);
  showVideo(id, {
    token: session.token,
    viewer: session.viewer,
    onPrivacy: renderPrivacy,
    onUnauthenticated: (message) => signOut(`Your sign-in was refused (${message}). Sign in again.`, { keepHash: true }),
  });
}

/** Opens `id` through the address, so the link can be shared and Back works. */
function navigate(id) {
  const hash = `#video=${encodeURIComponent(id)}`;
  if (location.hash === hash) openVideo(id);
  else location.hash = hash;
}

function signOut(message = null, { keepHash = false } = {}) {
  forgetToken();
  session = null;
  clearVideo();
  clearVideos();
  clearActivity();
  renderPrivacy([]);
  setStatus(null);
  byId('account').hidden = true;
  byId('dashboard-view').hidden = true;
  if (!keepHash && location.hash) history.replaceState(null, '', location.pathname + location.search);
  showSignIn(signIn, message);
}

async function start(token) {
  const viewer = subjectOf(token);
  if (!viewer) {
    signOut('That token names no user. Sign in again.', { keepHash: true });
    return;
  }
  session = { token, viewer };
  hideSignIn();
  byId('signed-in-as').textContent = viewer;
  byId('account').hidden = false;
  byId('dashboard-view').hidden = false;
  renderPrivacy([]);
  setStatus('Loading your videos…');
  let loaded;
  try {
    loaded = await loadCreator(token, viewer);
  } catch (error) {
    if (session?.token !== token) return;
    if (error.unauthenticated) {
      signOut(`Your token was refused: ${error.message}`, { keepHash: true });
      return;
    }
    setStatus(error.message, true);
    return;
  }
  if (session?.token !== token) return;
  setStatus(null);
  renderPrivacy([loaded.privacy]);
  showActivity(token, viewer, {
    onUnauthenticated: (message) => signOut(`Your sign-in was refused (${message}). Sign in again.`, { keepHash: true }),
  });
  const wanted = videoInHash();
  if (wanted) {
    openVideo(wanted);
  } else if (loaded.first) {
    history.replaceState(null, '', `#video=${encodeURIComponent(loaded.first)}`);
    openVideo(loaded.first);
  }
}

function signIn(token) {
  saveToken(token);
  start(token);
}

initSignIn(signIn);
initVideos(navigate);
initActivity();
byId('sign-out').addEventListener('click', () => signOut());
window.addEventListener('hashchange', () => {
  const id = videoInHash();
  if (session && id) openVideo(id);
});

const token = savedToken();
if (token) start(token);
else signOut(null, { keepHash: true });
