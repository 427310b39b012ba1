// Charts drawn as small SVG (timelines) and HTML bars (breakdowns). A suppressed cell is drawn
// hatched and labelled hidden, never as zero.

import { h, s } from './dom.js';
import { HIDDEN_TEXT, OWNER_ONLY_TEXT, bucketLabel, integer, isOwnerOnly, percent, rangeLabel, reason, signed } from './format.js';

const WIDTH = 600;
const HEIGHT = 160;
const TOP = 6;

function legend(k) {
  const who = k ? `fewer than ${k} people, or none` : 'too few people';
  return h('p', { class: 'legend', 'data-testid': 'hidden-legend' },
    h('span', { class: 'swatch hatched', 'aria-hidden': 'true' }), `Hatched: ${HIDDEN_TEXT} (${who}).`);
}

/**
 * A timeline as bars, one per bucket, with its numbers in a table beside it.
 * options: {testid, title, unit, granularity, timeline: {from, to, buckets}, signedCounts, k}
 */
export function timelineChart({ testid, title, unit, timeline, granularity, signedCounts = false, k = null }) {
  const buckets = timeline.buckets;
  const show = signedCounts ? signed : integer;
  const figure = h('figure', { class: 'chart timeline', 'data-testid': `${testid}-chart`, 'data-granularity': granularity });
  const caption = h('figcaption', {},
    h('span', { class: 'chart-title' }, title),
    h('span', { class: 'chart-range' }, rangeLabel(timeline.from, timeline.to)));
  if (!buckets.length) {
    figure.append(caption, h('p', { class: 'hint' }, 'Nothing in this range yet: no bucket has closed.'));
    return figure;
  }
  const values = buckets.map((bucket) => (bucket.suppressed || bucket.count === null ? 0 : bucket.count));
  const max = Math.max(0, ...values);
  const min = Math.min(0, ...values);
  const span = max - min || 1;
  const y = (value) => TOP + ((max - value) / span) * (HEIGHT - TOP);
  const slot = WIDTH / buckets.length;
  const gap = Math.min(slot * 0.2, 4);
  const total = values.reduce((sum, value) => sum + value, 0);
  const hidden = buckets.filter((bucket) => bucket.suppressed).length;

  const svg = s('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': `${title}: ${buckets.length} bars, ${show(total)} ${unit} in all${hidden ? `, ${hidden} hidden` : ''}`,
  });
  buckets.forEach((bucket, index) => {
    const x = index * slot;
    const label = bucketLabel(bucket.start, granularity);
    const hiddenCell = bucket.suppressed || bucket.count === null;
    const group = s('g', {
      class: hiddenCell ? 'bucket hidden' : 'bucket',
      'data-testid': testid,
      'data-start': bucket.start,
      'data-count': hiddenCell ? '' : String(bucket.count),
      'data-suppressed': String(Boolean(bucket.suppressed)),
    },
    s('title', {}, hiddenCell ? `${label}: ${HIDDEN_TEXT}` : `${label}: ${show(bucket.count)} ${unit}`),
    s('rect', { class: 'hit', x, y: 0, width: slot, height: HEIGHT }));
    if (hiddenCell) {
      group.append(s('rect', { class: 'bar-hidden', x: x + gap / 2, y: TOP, width: slot - gap, height: HEIGHT - TOP, fill: 'url(#hatch)' }));
    } else {
      const top = Math.min(y(bucket.count), y(0));
      const height = Math.abs(y(bucket.count) - y(0));
      group.append(s('rect', { class: bucket.count < 0 ? 'bar negative' : 'bar', x: x + gap / 2, y: top, width: slot - gap, height }));
    }
    svg.append(group);
  });
  svg.append(s('line', { class: 'baseline', x1: 0, x2: WIDTH, y1: y(0), y2: y(0), 'vector-effect': 'non-scaling-stroke' }));

  const frame = h('div', { class: 'chart-frame' },
    h('span', { class: 'y-label y-max', 'data-testid': `${testid}-max`, 'data-value': String(max) }, show(max)),
    svg,
    min < 0 ? h('span', { class: 'y-label y-min', 'data-testid': `${testid}-min`, 'data-value': String(min) }, show(min)) : null);
  const axis = h('div', { class: 'x-axis', 'aria-hidden': 'true' },
    h('span', {}, bucketLabel(buckets[0].start, granularity)),
    h('span', {}, bucketLabel(buckets[buckets.length - 1].start, granularity)));
  const summary = h('p', { class: 'chart-total' },
    'In all: ', h('strong', { 'data-testid': `${testid}-total`, 'data-value': String(total) }, show(total)), ` ${unit}`,
    hidden ? ` (not counting ${hidden} hidden)` : '');

  const rows = buckets.map((bucket) => {
    const hiddenCell = bucket.suppressed || bucket.count === null;
    return h('tr', {
      'data-testid': `${testid}-row`,
      'data-start': bucket.start,
      'data-count': hiddenCell ? '' : String(bucket.count),
      'data-suppressed': String(Boolean(bucket.suppressed)),
    },
    h('th', { scope: 'row' }, bucketLabel(bucket.start, granularity)),
    h('td', {}, hiddenCell ? h('span', { class: 'chip hidden-chip', title: HIDDEN_TEXT }, 'hidden') : show(bucket.count)));
  });
  const table = h('details', { class: 'numbers' },
    h('summary', {}, 'Show the numbers'),
    h('table', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Starting'), h('th', { scope: 'col' }, unit))),
      h('tbody', {}, rows)));

  figure.append(...[caption, frame, axis, summary, hidden ? legend(k) : null, table].filter(Boolean));
  return figure;
}

/**
 * A breakdown as horizontal bars, one row per cell; suppressed cells hatched and labelled hidden.
 * options: {testid, title, unit, buckets, label(key), k}
 */
export function breakdownChart({ testid, title, unit, buckets, label, k = null }) {
  const visible = buckets.filter((bucket) => !bucket.suppressed && bucket.count !== null);
  const max = Math.max(1, ...visible.map((bucket) => bucket.count));
  const hidden = buckets.length - visible.length;
  const list = h('ul', { class: 'bars', 'aria-label': title });
  for (const bucket of buckets) {
    const hiddenCell = bucket.suppressed || bucket.count === null;
    const fill = h('span', { class: hiddenCell ? 'bar-fill hatched' : 'bar-fill' });
    fill.style.width = hiddenCell ? '100%' : `${Math.max(0, (bucket.count / max) * 100)}%`;
    const value = hiddenCell
      ? h('span', { class: 'bar-value chip hidden-chip', title: HIDDEN_TEXT, 'aria-label': `hidden: ${HIDDEN_TEXT}` }, 'hidden')
      : h('span', { class: 'bar-value', 'aria-label': `${integer(bucket.count)} ${unit}` }, integer(bucket.count));
    list.append(h('li', {
      class: hiddenCell ? 'bar-row hidden' : 'bar-row',
      'data-testid': testid,
      'data-key': bucket.key,
      'data-count': hiddenCell ? '' : String(bucket.count),
      'data-suppressed': String(Boolean(bucket.suppressed)),
      title: hiddenCell ? `${label(bucket.key)}: ${HIDDEN_TEXT}` : null,
    },
    h('span', { class: 'bar-label', title: hiddenCell ? null : label(bucket.key) }, label(bucket.key)),
    h('span', { class: 'bar-track', 'aria-hidden': 'true' }, fill),
    value));
  }
  return h('figure', { class: 'chart breakdown', 'data-testid': `${testid}-chart` },
    h('figcaption', {}, h('span', { class: 'chart-title' }, title)),
    buckets.length ? list : h('p', { class: 'hint' }, 'Nothing to show yet.'),
    hidden ? legend(k) : null);
}

/** What stands in a chart's place when its field was refused: the owner-only note, or why. */
export function refusal(testid, error) {
  const ownerOnly = isOwnerOnly(error);
  return h('p', {
    class: ownerOnly ? 'refusal owner-only' : 'refusal',
    'data-testid': `${testid}-refused`,
    'data-code': error?.extensions?.code ?? '',
    title: error?.message ?? null,
  }, ownerOnly ? `${OWNER_ONLY_TEXT}.` : reason(error));
}

/**
 * Retention as ten bars: the share still watching at each tenth of the video, on a 0–100% scale;
 * suppressed points hatched and labelled hidden, never as zero.
 * options: {testid, title, points: [{percent, share, suppressed}], k}
 */
export function retentionChart({ testid, title, points, k = null }) {
  const slot = WIDTH / Math.max(1, points.length);
  const gap = Math.min(slot * 0.2, 8);
  const y = (share) => TOP + (1 - share) * (HEIGHT - TOP);
  const hidden = points.filter((point) => point.suppressed || point.share === null).length;
  const svg = s('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': `${title}: ${points.length} points${hidden ? `, ${hidden} hidden` : ''}`,
  });
  points.forEach((point, index) => {
    const x = index * slot;
    const hiddenPoint = point.suppressed || point.share === null;
    const group = s('g', {
      class: hiddenPoint ? 'bucket hidden' : 'bucket',
      'data-testid': testid,
      'data-percent': String(point.percent),
      'data-share': hiddenPoint ? '' : String(point.share),
      'data-suppressed': String(Boolean(point.suppressed)),
    },
    s('title', {}, hiddenPoint ? `At ${point.percent}%: ${HIDDEN_TEXT}` : `At ${point.percent}%: ${percent(point.share)} still watching`),
    s('rect', { class: 'hit', x, y: 0, width: slot, height: HEIGHT }));
    if (hiddenPoint) {
      group.append(s('rect', { class: 'bar-hidden', x: x + gap / 2, y: TOP, width: slot - gap, height: HEIGHT - TOP, fill: 'url(#hatch)' }));
    } else {
      group.append(s('rect', { class: 'bar', x: x + gap / 2, y: y(point.share), width: slot - gap, height: HEIGHT - y(point.share) }));
    }
    svg.append(group);
  });
  svg.append(s('line', { class: 'baseline', x1: 0, x2: WIDTH, y1: HEIGHT, y2: HEIGHT, 'vector-effect': 'non-scaling-stroke' }));
  const axis = h('div', { class: 'x-axis', 'aria-hidden': 'true' },
    h('span', {}, points.length ? `${points[0].percent}%` : ''), h('span', {}, 'of the video'),
    h('span', {}, points.length ? `${points[points.length - 1].percent}%` : ''));
  const rows = points.map((point) => {
    const hiddenPoint = point.suppressed || point.share === null;
    return h('tr', {}, h('th', { scope: 'row' }, `${point.percent}%`),
      h('td', {}, hiddenPoint ? h('span', { class: 'chip hidden-chip', title: HIDDEN_TEXT }, 'hidden') : percent(point.share)));
  });
  const table = h('details', { class: 'numbers' },
    h('summary', {}, 'Show the numbers'),
    h('table', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Into the video'), h('th', { scope: 'col' }, 'Still watching'))),
      h('tbody', {}, rows)));
  return h('figure', { class: 'chart retention', 'data-testid': `${testid}-chart` },
    h('figcaption', {}, h('span', { class: 'chart-title' }, title), h('span', { class: 'chart-range' }, 'share of viewers at each tenth')),
    points.length ? [h('div', { class: 'chart-frame' }, h('span', { class: 'y-label y-max' }, '100%'), svg), axis, table] : h('p', { class: 'hint' }, 'Nothing to show yet.'),
    hidden ? legend(k) : null);
}
