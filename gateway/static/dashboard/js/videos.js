// The signed-in creator's totals and videos, most shared first, a page at a time.

import { graphql } from './api.js';
import { byId, h, replace } from './dom.js';
import { date, integer, reason } from './format.js';
import { CREATOR, MORE_VIDEOS, PAGE_SIZE } from './queries.js';

const TOTALS = [
  ['followers', 'Followers'],
  ['videos', 'Videos'],
  ['views', 'Views'],
  ['likes', 'Likes'],
  ['comments', 'Comments'],
  ['shares', 'Shares'],
];

let current = null; // {token, creatorId, endCursor}

function item(video) {
  return h('li', {},
    h('a', {
      href: `#video=${encodeURIComponent(video.id)}`,
      class: 'video-item',
      'data-testid': 'video-item',
      'data-video-id': video.id,
      'data-shares': String(video.stats.shares),
      'data-views': String(video.stats.views),
    },
    h('span', { class: 'video-name' }, video.id),
    h('span', { class: 'video-counts' },
      h('span', { 'data-testid': 'video-shares', 'data-value': String(video.stats.shares) }, integer(video.stats.shares)), ' shares · ',
      h('span', { 'data-testid': 'video-views', 'data-value': String(video.stats.views) }, integer(video.stats.views)), ' views'),
    h('span', { class: 'video-date' }, date(video.publishedAt))));
}

function renderTotals(totals) {
  const list = byId('totals');
  if (!totals) {
    replace(list);
    return;
  }
  replace(list, TOTALS.map(([field, label]) => h('div', { class: 'total' },
    h('dt', {}, label),
    h('dd', { 'data-testid': `total-${field}`, 'data-value': String(totals[field]) }, integer(totals[field])))));
}

function renderPage(connection, append) {
  const list = byId('video-list');
  const items = connection.edges.map((edge) => item(edge.node));
  if (append) list.append(...items);
  else replace(list, ...items);
  current.endCursor = connection.pageInfo.endCursor;
  byId('more-videos').hidden = !connection.pageInfo.hasNextPage;
  byId('video-list-empty').hidden = list.children.length > 0;
  list.dataset.state = 'ready';
}

/** Loads the creator's totals and first page. Resolves with the answer's privacy report and the
 * most shared video's id (null: none); rejects with RequestFailed when there is no answer. */
export async function loadCreator(token, creatorId) {
  current = { token, creatorId, endCursor: null };
  byId('video-list').dataset.state = 'loading';
  const answer = await graphql(token, CREATOR, { id: creatorId, first: PAGE_SIZE });
  const creator = answer.data?.creator;
  if (!creator) {
    renderTotals(null);
    replace(byId('video-list'));
    byId('video-list').dataset.state = 'ready';
    byId('more-videos').hidden = true;
    const empty = byId('video-list-empty');
    const error = answer.errors[0];
    empty.textContent = error?.extensions?.code === 'NOT_FOUND' ? 'You have no published videos yet.' : reason(error);
    empty.hidden = false;
    return { privacy: answer.privacy, first: null };
  }
  renderTotals(creator.totals);
  renderPage(creator.videos, false);
  return { privacy: answer.privacy, first: creator.videos.edges[0]?.node.id ?? null };
}

async function loadMore() {
  if (!current?.endCursor) return;
  const button = byId('more-videos');
  button.disabled = true;
  button.textContent = 'Loading…';
  try {
    const answer = await graphql(current.token, MORE_VIDEOS, { id: current.creatorId, first: PAGE_SIZE, after: current.endCursor });
    if (answer.data?.creator) renderPage(answer.data.creator.videos, true);
  } catch (error) {
    byId('video-list-empty').textContent = error.message;
    byId('video-list-empty').hidden = false;
  } finally {
    button.disabled = false;
    button.textContent = 'More videos';
  }
}

/** Marks the video on screen in the list (if it is there). */
export function markSelected(videoId) {
  for (const link of byId('video-list').querySelectorAll('[data-video-id]')) {
    if (link.dataset.videoId === videoId) link.setAttribute('aria-current', 'true');
    else link.removeAttribute('aria-current');
  }
}

export function clearVideos() {
  current = null;
  renderTotals(null);
  replace(byId('video-list'));
  byId('more-videos').hidden = true;
  byId('video-list-empty').hidden = true;
}

/** Wires "More videos" and "Open a video by id"; `onOpen(id)` opens one. */
export function initVideos(onOpen) {
  byId('more-videos').addEventListener('click', loadMore);
  byId('open-video-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = byId('video-id-input');
    const id = input.value.trim();
    if (id) onOpen(id);
  });
}
