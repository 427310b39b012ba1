// A video's insights beside its counts: reach, retention, comment sentiment and share surges. Each
// is asked on its own and fills its own slot, so a field the policy refuses outright (or a server
// that lacks it) blanks that slot only, never the rest of the video.

import { RequestFailed, errorAt, graphql } from './api.js';
import { breakdownChart, refusal, retentionChart } from './charts.js';
import { h, replace } from './dom.js';
import { OWNER_ONLY_TEXT, bucketLabel, bySentiment, integer, isOwnerOnly, reason, sentimentLabel } from './format.js';
import { REACH, RETENTION, SENTIMENT, SURGES } from './queries.js';

const SLOTS = ['reach', 'retention', 'sentiment', 'surges'];
// Each slot's chart: its title, and the test id its marks carry (`<testid>-chart` on the figure).
const CHARTS = {
  retention: { title: 'Still watching', testid: 'retention-point' },
  sentiment: { title: 'Commenters by sentiment', testid: 'sentiment-bucket' },
  surges: { title: 'Share surges', testid: 'surge' },
};

/** The reach card, to sit among the metric cards until its answer fills it. */
export function reachCard() {
  return h('div', { class: 'card', 'data-testid': 'card-reach', id: 'card-reach' },
    h('span', { class: 'card-label' }, 'Reach'),
    h('span', { class: 'card-value', 'data-testid': 'metric-reach', 'data-state': 'loading', 'data-value': '' }, '…'),
    h('span', { class: 'card-note' }, 'Distinct viewers'));
}

/** The section the other insights fill. */
export function insightsSection() {
  const slot = (name, title) => h('div', { class: 'insight', id: `insight-${name}`, 'data-testid': `insight-${name}`, 'data-state': 'loading' },
    h('figure', { class: 'chart' }, h('figcaption', {}, h('span', { class: 'chart-title' }, title)), h('p', { class: 'hint' }, 'Loading…')));
  return h('section', { class: 'insights', 'aria-labelledby': 'insights-title', 'data-testid': 'insights', 'data-state': 'loading' },
    h('h3', { id: 'insights-title' }, 'What resonated'),
    h('div', { class: 'breakdown-grid' },
      ...['retention', 'sentiment', 'surges'].map((name) => slot(name, CHARTS[name].title))));
}

function fill(name, state, ...children) {
  const slot = document.getElementById(`insight-${name}`);
  if (!slot) return;
  replace(slot, ...children);
  slot.dataset.state = state;
}

function titled(title, testid, ...children) {
  return h('figure', { class: 'chart', 'data-testid': `${testid}-chart` }, h('figcaption', {}, h('span', { class: 'chart-title' }, title)), ...children);
}

/** A request that got no answer to show: the server lacks the field, is busy, or is down. */
function unavailable(testid, error) {
  return h('p', { class: 'refusal', 'data-testid': `${testid}-unavailable`, title: error.message }, `Not available from this server: ${error.message}`);
}

function showReach(answer) {
  const value = answer.data?.video?.stats?.reach;
  const card = document.getElementById('card-reach');
  if (!card) return;
  const shown = card.querySelector('[data-testid="metric-reach"]');
  const note = card.querySelector('.card-note');
  const error = errorAt(answer, ['video', 'stats', 'reach']);
  if (value !== null && value !== undefined) {
    Object.assign(shown.dataset, { state: 'ok', value: String(value) });
    shown.textContent = integer(value);
    shown.classList.remove('refused');
  } else {
    Object.assign(shown.dataset, { state: error ? (isOwnerOnly(error) ? 'forbidden' : 'error') : 'null', value: '' });
    shown.textContent = error && isOwnerOnly(error) ? OWNER_ONLY_TEXT : '—';
    shown.classList.toggle('refused', Boolean(error));
    note.textContent = error && !isOwnerOnly(error) ? reason(error) : '';
  }
}

function reachUnavailable(error) {
  const shown = document.querySelector('#card-reach [data-testid="metric-reach"]');
  if (!shown) return;
  Object.assign(shown.dataset, { state: 'unavailable', value: '' });
  shown.textContent = '—';
  shown.classList.add('refused');
  shown.title = error.message;
  document.querySelector('#card-reach .card-note').textContent = 'Not available from this server.';
}

function showRetention(answer) {
  const retention = answer.data?.video?.retention;
  const { title } = CHARTS.retention;
  if (retention) {
    fill('retention', 'ready', retentionChart({ testid: 'retention-point', title, points: retention.points, k: answer.privacy?.k ?? null }));
    return;
  }
  const error = errorAt(answer, ['video', 'retention']);
  if (error?.extensions?.code === 'NOT_FOUND') {  // the video's length is not known
    fill('retention', 'null', titled(title, 'retention-point',
      h('p', { class: 'hint', 'data-testid': 'retention-none' }, "No retention for this video: its length is not known (videos published before durations were recorded).")));
    return;
  }
  fill('retention', 'refused', titled(title, 'retention-point', refusal('retention-point', error)));
}

function showSentiment(answer) {
  const sentiment = answer.data?.video?.commentSentiment;
  const { title } = CHARTS.sentiment;
  if (sentiment) {
    fill('sentiment', 'ready', breakdownChart({
      testid: 'sentiment-bucket', title, unit: 'commenters', buckets: bySentiment(sentiment.buckets), label: sentimentLabel, k: answer.privacy?.k ?? null,
    }));
    return;
  }
  fill('sentiment', 'refused', titled(title, 'sentiment-bucket', refusal('sentiment-bucket', errorAt(answer, ['video', 'commentSentiment']))));
}

function showSurges(answer) {
  const surges = answer.data?.video?.shareSurges;
  const { title } = CHARTS.surges;
  if (!surges) {
    fill('surges', 'refused', titled(title, 'surge', refusal('surge', errorAt(answer, ['video', 'shareSurges']))));
    return;
  }
  const floor = answer.privacy?.granularityFloor ?? 'HOUR';
  const about = h('p', { class: 'card-note' }, 'When shares came more than the policy’s factor faster than this video’s usual pace (the median of its pace before), each from k or more new sharers.');
  if (!surges.length) {
    fill('surges', 'ready', titled(title, 'surge', h('p', { class: 'hint', 'data-testid': 'surges-none' }, 'No surge yet: shares have kept to their usual pace.'), about));
    return;
  }
  const items = surges.map((surge) => h('li', {
    class: 'surge',
    'data-testid': 'surge',
    'data-released-at': surge.releasedAt,
    'data-factor': String(surge.factor),
    'data-shares-per-hour': String(surge.sharesPerHour),
  },
  h('span', { class: 'surge-when' }, bucketLabel(surge.releasedAt, floor)),
  h('span', { class: 'surge-factor' }, `${surge.factor.toFixed(1)}× the usual pace`),
  h('span', { class: 'surge-rate' }, `${surge.sharesPerHour.toFixed(1)} shares an hour`)));
  fill('surges', 'ready', titled(title, 'surge', h('ol', { class: 'surges' }, items), about));
}

const SHOW = { reach: showReach, retention: showRetention, sentiment: showSentiment, surges: showSurges };
const DOCUMENTS = { reach: REACH, retention: RETENTION, sentiment: SENTIMENT, surges: SURGES };

/**
 * Asks for every insight of video `id` at once and fills each slot as its answer comes.
 * options: {token, isCurrent() (false once another video or a sign-out replaced this one),
 * onReport(name, privacy), onUnauthenticated(message)}. Resolves when every slot is filled.
 */
export async function loadInsights(id, { token, isCurrent, onReport, onUnauthenticated }) {
  const section = document.querySelector('[data-testid="insights"]');
  section?.setAttribute('aria-busy', 'true');
  await Promise.all(SLOTS.map(async (name) => {
    let answer;
    try {
      answer = await graphql(token, DOCUMENTS[name], { id });
    } catch (error) {
      if (!isCurrent()) return;
      if (error instanceof RequestFailed && error.unauthenticated) {
        onUnauthenticated(error.message);
        return;
      }
      if (name === 'reach') reachUnavailable(error);
      else fill(name, 'unavailable', titled(CHARTS[name].title, CHARTS[name].testid, unavailable(CHARTS[name].testid, error)));
      return;
    }
    if (!isCurrent()) return;
    SHOW[name](answer);
    onReport(name, answer.privacy);
  }));
  if (!isCurrent() || !section) return;
  section.removeAttribute('aria-busy');
  section.dataset.state = 'ready';
}
