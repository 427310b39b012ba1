// One video: its metric cards, its timelines with a granularity switch, its breakdowns and its
// insights (insights.js). Each field shows what the gateway decided: a number, hidden
// cells, "—" with why, or the refusal.

import { RequestFailed, errorAt, graphql } from './api.js';
import { breakdownChart, refusal, timelineChart } from './charts.js';
import { byId, h, replace } from './dom.js';
import {
  GRANULARITY_NOUN, OWNER_ONLY_TEXT, ageLabel, byAgeBand, channelLabel, date, integer, isOwnerOnly, percent, reason, regionLabel, seconds,
} from './format.js';
import { insightsSection, loadInsights, reachCard } from './insights.js';
import { GRANULARITIES, TIMELINES, VIDEO } from './queries.js';

const CARDS = [
  { field: 'views', label: 'Views', format: integer },
  { field: 'likes', label: 'Likes', format: integer, help: 'Net of unlikes' },
  { field: 'comments', label: 'Comments', format: integer },
  { field: 'shares', label: 'Shares', format: integer },
  { field: 'likeRatio', label: 'Like ratio', format: percent, help: 'Likes per view' },
  { field: 'engagementRate', label: 'Engagement rate', format: percent, help: 'Likes, comments and shares per view' },
  { field: 'completionRate', label: 'Completion rate', format: percent, help: 'Views watched to the end' },
  { field: 'averageWatchSeconds', label: 'Average watch time', format: seconds, help: 'Per view; each viewer counts up to 3 min, rounded to steps of k viewers' },
];

const kebab = (name) => name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);

let state = {
  selection: 0, // bumped by every selection and switch: answers to an older one are dropped
  granularity: 'DAY',
  token: null,
  video: null, // {id, creatorId}
  reports: { video: null, timelines: null, insights: {} },
  onPrivacy: () => {},
  onUnauthenticated: () => {},
};

function view() {
  return byId('video-view');
}

/** Why a ratio came back null although the policy allowed it. */
function whyNull(field, stats) {
  if (stats.views === 0) return 'No views released yet: nothing to divide by.';
  if (field === 'averageWatchSeconds') return 'Not served where counts carry noise, nor from counts released before watch time was capped per viewer.';
  if (field === 'completionRate') return "Withheld to protect people's privacy: fewer than k viewers finished it, or fewer than k did not.";
  return "Withheld to protect people's privacy.";
}

function card(spec, stats, answer) {
  const testid = `metric-${kebab(spec.field)}`;
  const error = errorAt(answer, ['video', 'stats', spec.field]);
  const value = stats?.[spec.field];
  let shown;
  let note = spec.help ?? null;
  if (value !== null && value !== undefined) {
    shown = h('span', { class: 'card-value', 'data-testid': testid, 'data-state': 'ok', 'data-value': String(value) }, spec.format(value));
  } else if (error && isOwnerOnly(error)) {
    shown = h('span', { class: 'card-value refused', 'data-testid': testid, 'data-state': 'forbidden', 'data-value': '', title: error.message }, OWNER_ONLY_TEXT);
    note = null;
  } else if (error) {
    shown = h('span', { class: 'card-value refused', 'data-testid': testid, 'data-state': 'error', 'data-value': '', title: error.message }, '—');
    note = reason(error);
  } else {
    shown = h('span', { class: 'card-value', 'data-testid': testid, 'data-state': 'null', 'data-value': '' }, '—');
    note = whyNull(spec.field, stats ?? {});
  }
  return h('div', { class: 'card', 'data-testid': `card-${kebab(spec.field)}` },
    h('span', { class: 'card-label' }, spec.label), shown, note ? h('span', { class: 'card-note' }, note) : null);
}

function breakdown(answer, alias, options) {
  const value = answer.data?.video?.[alias];
  if (value) return breakdownChart({ ...options, k: answer.privacy?.k ?? null });
  return h('figure', { class: 'chart breakdown', 'data-testid': `${options.testid}-chart` },
    h('figcaption', {}, h('span', { class: 'chart-title' }, options.title)),
    refusal(options.testid, errorAt(answer, ['video', alias])));
}

function granularitySwitch() {
  const options = GRANULARITIES.map((granularity) => {
    const id = `granularity-${granularity}`;
    return h('span', { class: 'segment' },
      h('input', {
        type: 'radio', name: 'granularity', id, value: granularity, 'data-testid': id,
        checked: granularity === state.granularity,
        onchange: () => switchGranularity(granularity),
      }),
      h('label', { for: id }, GRANULARITY_NOUN[granularity].replace(/^./, (c) => c.toUpperCase())));
  });
  return h('fieldset', { class: 'granularity' }, h('legend', {}, 'One bar per'), options);
}

function render(answer) {
  const video = answer.data?.video;
  const section = view();
  if (!video) {
    const error = errorAt(answer, ['video']);
    replace(section,
      h('h2', { id: 'video-title' }, `Video ${state.video.id}`),
      h('p', { class: 'error', role: 'alert', 'data-testid': 'video-error', 'data-code': error?.extensions?.code ?? '' }, reason(error)));
    section.dataset.state = 'error';
    return false;
  }
  const own = state.viewer === video.creatorId;
  const k = answer.privacy?.k ?? null;
  replace(section,
    h('header', { class: 'video-head' },
      h('h2', { id: 'video-title' }, `Video ${video.id}`),
      h('p', { class: 'meta' }, `by `, h('span', { 'data-testid': 'video-creator' }, video.creatorId), ` · published ${date(video.publishedAt)}`)),
    own ? null : h('p', { class: 'notice', 'data-testid': 'not-yours' },
      `This is ${video.creatorId}'s video: you see its public counts. Everything else is for its creator only.`),
    h('div', { class: 'cards', 'data-testid': 'metric-cards' }, CARDS.map((spec) => card(spec, video.stats, answer)), reachCard()),
    h('section', { class: 'timelines', 'aria-labelledby': 'timelines-title', 'data-testid': 'timelines', 'data-state': 'loading' },
      h('div', { class: 'section-head' }, h('h3', { id: 'timelines-title' }, 'Over time'), granularitySwitch()),
      h('div', { class: 'timeline-body', id: 'timeline-body', 'aria-live': 'polite' }, h('p', { class: 'hint' }, 'Loading…'))),
    h('section', { class: 'breakdowns', 'aria-labelledby': 'breakdowns-title' },
      h('h3', { id: 'breakdowns-title' }, 'Who it reached'),
      h('div', { class: 'breakdown-grid' },
        breakdown(answer, 'shareChannels', { testid: 'channel-bucket', title: 'Shares by channel', unit: 'shares', buckets: video.shareChannels?.buckets ?? [], label: channelLabel, k }),
        breakdown(answer, 'region', { testid: 'region-bucket', title: 'Viewers by region', unit: 'viewers', buckets: video.region?.buckets ?? [], label: regionLabel, k }),
        breakdown(answer, 'ageBand', { testid: 'age-bucket', title: 'Viewers by age', unit: 'viewers', buckets: byAgeBand(video.ageBand?.buckets ?? []), label: ageLabel, k }))),
    insightsSection());
  section.dataset.state = 'ready';
  return true;
}

function timelineOrRefusal(answer, path, options) {
  const timeline = path.reduce((node, key) => node?.[key], answer.data);
  if (timeline) return timelineChart({ ...options, timeline, granularity: timeline.granularity, k: answer.privacy?.k ?? null });
  return h('figure', { class: 'chart timeline', 'data-testid': `${options.testid}-chart` },
    h('figcaption', {}, h('span', { class: 'chart-title' }, options.title)),
    refusal(options.testid, errorAt(answer, path)));
}

async function loadTimelines() {
  const selection = state.selection;
  const { granularity } = state;
  const section = view().querySelector('[data-testid="timelines"]');
  const body = byId('timeline-body');
  section.dataset.state = 'loading';
  section.setAttribute('aria-busy', 'true');
  let answer;
  try {
    answer = await graphql(state.token, TIMELINES, { id: state.video.id, creator: state.video.creatorId, granularity });
  } catch (error) {
    if (selection !== state.selection) return;
    if (error instanceof RequestFailed && error.unauthenticated) {
      state.onUnauthenticated(error.message);
      return;
    }
    replace(body, h('p', { class: 'error', role: 'alert', 'data-testid': 'timelines-error' }, error.message));
    section.dataset.state = 'error';
    section.removeAttribute('aria-busy');
    return;
  }
  if (selection !== state.selection) return;
  const noun = GRANULARITY_NOUN[granularity];
  replace(body,
    timelineOrRefusal(answer, ['video', 'shareTimeline'], { testid: 'share-bucket', title: `Shares per ${noun}`, unit: 'shares' }),
    timelineOrRefusal(answer, ['creator', 'followerGrowth'], { testid: 'follower-bucket', title: `New followers per ${noun} (net)`, unit: 'followers', signedCounts: true }));
  state.reports.timelines = answer.privacy;
  reportPrivacy();
  section.dataset.granularity = granularity;
  section.dataset.state = 'ready';
  section.removeAttribute('aria-busy');
}

/** Every answer behind the video on screen, to the privacy panel. */
function reportPrivacy() {
  state.onPrivacy([state.reports.video, state.reports.timelines, ...Object.values(state.reports.insights)]);
}

function insights() {
  const selection = state.selection;
  return loadInsights(state.video.id, {
    token: state.token,
    isCurrent: () => selection === state.selection,
    onReport: (name, privacy) => {
      state.reports.insights[name] = privacy;
      reportPrivacy();
    },
    onUnauthenticated: state.onUnauthenticated,
  });
}

function switchGranularity(granularity) {
  if (!state.video) return;
  state.granularity = granularity;
  state.selection += 1;
  loadTimelines();
}

/**
 * Shows video `id` as `viewer` sees it. options: {token, viewer, onPrivacy(reports), onUnauthenticated(message)}.
 */
export async function showVideo(id, { token, viewer, onPrivacy, onUnauthenticated }) {
  state.selection += 1;
  const selection = state.selection;
  Object.assign(state, { token, viewer, onPrivacy, onUnauthenticated, video: { id, creatorId: null }, reports: { video: null, timelines: null, insights: {} } });
  const section = view();
  section.dataset.state = 'loading';
  section.dataset.videoId = id;
  section.setAttribute('aria-busy', 'true');
  let answer;
  try {
    answer = await graphql(token, VIDEO, { id });
  } catch (error) {
    if (selection !== state.selection) return;
    section.removeAttribute('aria-busy');
    if (error instanceof RequestFailed && error.unauthenticated) {
      onUnauthenticated(error.message);
      return;
    }
    replace(section, h('h2', { id: 'video-title' }, `Video ${id}`), h('p', { class: 'error', role: 'alert', 'data-testid': 'video-error' }, error.message));
    section.dataset.state = 'error';
    return;
  }
  if (selection !== state.selection) return;
  section.removeAttribute('aria-busy');
  state.reports.video = answer.privacy;
  onPrivacy([answer.privacy]);
  if (!render(answer)) return;
  state.video.creatorId = answer.data.video.creatorId;
  await Promise.all([loadTimelines(), insights()]);
}

export function clearVideo() {
  state.selection += 1;
  state.video = null;
  const section = view();
  replace(section, h('h2', { id: 'video-title' }, 'Pick a video'), h('p', { class: 'hint' }, 'Choose one of your videos to see how it is doing.'));
  section.dataset.state = 'empty';
  delete section.dataset.videoId;
}
