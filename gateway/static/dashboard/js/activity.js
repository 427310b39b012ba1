// "When your audience watches": the creator's viewers by hour of the week as a 7 × 24 heat map, in a
// time zone of the creator's choosing (the browser's own to begin with). Suppressed cells are hatched
// and read as hidden, never as a shade of few.

import { RequestFailed, errorAt, graphql } from './api.js';
import { refusal } from './charts.js';
import { byId, h, replace } from './dom.js';
import { HIDDEN_TEXT, integer } from './format.js';
import { ACTIVITY } from './queries.js';

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']; // ISO: 1 = Monday … 7 = Sunday
const HOURS = Array.from({ length: 24 }, (_, hour) => hour);

let current = null; // {token, creatorId, asked, onUnauthenticated}

/** The browser's own zone: what the select shows first. */
export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

function zones(selected) {
  let known = [];
  try {
    known = Intl.supportedValuesOf('timeZone');
  } catch {
    known = [];
  }
  return [...new Set([selected, 'UTC', ...known])];
}

function hourRange(hour) {
  const pad = (value) => String(value).padStart(2, '0');
  return `${pad(hour)}:00–${pad((hour + 1) % 24)}:00`;
}

function heatMap(activity, k) {
  const byCell = new Map(activity.cells.map((cell) => [`${cell.dayOfWeek}-${cell.hour}`, cell]));
  const shown = activity.cells.filter((cell) => !cell.suppressed && cell.viewers !== null);
  const most = Math.max(0, ...shown.map((cell) => cell.viewers));
  const hidden = activity.cells.length - shown.length;
  const head = h('tr', {}, h('th', { scope: 'col', class: 'corner' }, h('span', { class: 'visually-hidden' }, 'Day')),
    HOURS.map((hour) => h('th', { scope: 'col', class: 'hour', title: hourRange(hour) }, hour % 6 === 0 ? String(hour) : '')));
  const rows = DAYS.map((day, index) => h('tr', {}, h('th', { scope: 'row' }, day), HOURS.map((hour) => {
    const cell = byCell.get(`${index + 1}-${hour}`);
    const hiddenCell = !cell || cell.suppressed || cell.viewers === null;
    const td = h('td', {
      class: hiddenCell ? 'heat hatched' : 'heat',
      'data-testid': 'activity-cell',
      'data-day': String(index + 1),
      'data-hour': String(hour),
      'data-viewers': hiddenCell ? '' : String(cell.viewers),
      'data-suppressed': String(hiddenCell),
      title: hiddenCell ? `${day} ${hourRange(hour)}: ${HIDDEN_TEXT}` : `${day} ${hourRange(hour)}: ${integer(cell.viewers)} viewers`,
    });
    if (!hiddenCell) td.style.setProperty('--heat', String(most ? cell.viewers / most : 0));
    return td;
  })));
  const who = k ? `fewer than ${k} people, or none` : 'too few people';
  return h('figure', { class: 'chart heatmap', 'data-testid': 'activity-chart', 'data-time-zone': activity.timeZone },
    h('figcaption', {}, h('span', { class: 'chart-title' }, 'Viewers by hour of the week'), h('span', { class: 'chart-range' }, activity.timeZone)),
    h('table', { class: 'heat-table', 'aria-label': `Viewers by day and hour (${activity.timeZone})` }, h('thead', {}, head), h('tbody', {}, rows)),
    h('p', { class: 'legend' },
      h('span', { class: 'swatch heat-swatch', 'aria-hidden': 'true' }), `Darker: more viewers (the most in an hour: ${integer(most)}). `,
      hidden ? [h('span', { class: 'swatch hatched', 'aria-hidden': 'true' }), `Hatched: ${HIDDEN_TEXT} (${who}).`] : null));
}

async function load() {
  const asked = { ...current, timeZone: byId('time-zone').value };
  current.asked = asked;
  const panel = byId('activity-panel');
  const body = byId('activity-body');
  panel.dataset.state = 'loading';
  panel.setAttribute('aria-busy', 'true');
  let answer;
  try {
    answer = await graphql(asked.token, ACTIVITY, { id: asked.creatorId, timeZone: asked.timeZone });
  } catch (error) {
    if (current?.asked !== asked) return;
    panel.removeAttribute('aria-busy');
    if (error instanceof RequestFailed && error.unauthenticated) {
      asked.onUnauthenticated(error.message);
      return;
    }
    replace(body, h('p', { class: 'refusal', 'data-testid': 'activity-unavailable', title: error.message }, `Not available from this server: ${error.message}`));
    panel.dataset.state = 'unavailable';
    return;
  }
  if (current?.asked !== asked) return;
  panel.removeAttribute('aria-busy');
  const activity = answer.data?.creator?.audienceActivity;
  if (activity) {
    replace(body, heatMap(activity, answer.privacy?.k ?? null));
    panel.dataset.state = 'ready';
  } else {
    replace(body, refusal('activity', errorAt(answer, ['creator', 'audienceActivity'])));
    panel.dataset.state = 'refused';
  }
  panel.dataset.timeZone = asked.timeZone;
}

/** Shows the creator's audience activity, in the zone the select shows. */
export function showActivity(token, creatorId, { onUnauthenticated }) {
  current = { token, creatorId, onUnauthenticated, asked: null };
  byId('activity-panel').hidden = false;
  return load();
}

export function clearActivity() {
  current = null;
  replace(byId('activity-body'));
  byId('activity-panel').dataset.state = 'empty';
}

/** Fills the time zone select (the browser's zone first and chosen) and re-asks on a change. */
export function initActivity() {
  const select = byId('time-zone');
  const own = browserTimeZone();
  replace(select, zones(own).map((zone) => h('option', { value: zone, selected: zone === own }, zone)));
  select.value = own;
  select.addEventListener('change', () => {
    if (current) load();
  });
}
