// Numbers, dates, labels and reasons in plain words. Formats are fixed (en-US, UTC) so that what
// the page shows reads the same everywhere: bucket boundaries are UTC.

const INTEGER = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const DAY = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', month: 'short', day: 'numeric' });
const FULL_DAY = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', month: 'short', day: 'numeric', year: 'numeric' });
const HOUR = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const MONTH = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', month: 'short', year: 'numeric' });

export const HIDDEN_TEXT = "hidden to protect people's privacy";
export const OWNER_ONLY_TEXT = 'Only the creator can see this';

export function integer(value) {
  return INTEGER.format(value);
}

/** A signed count (follower growth): +12, −3, 0. */
export function signed(value) {
  if (value > 0) return `+${INTEGER.format(value)}`;
  if (value < 0) return `−${INTEGER.format(-value)}`;
  return '0';
}

/** A ratio as a percentage with one decimal: 0.2088 → "20.9%". */
export function percent(ratio) {
  return `${(ratio * 100).toFixed(1)}%`;
}

/** Seconds with one decimal: 47.403 → "47.4 s". */
export function seconds(value) {
  return `${value.toFixed(1)} s`;
}

export function date(iso) {
  return iso ? FULL_DAY.format(new Date(iso)) : 'not published';
}

/** A bucket's start, as wide as its granularity. */
export function bucketLabel(iso, granularity) {
  const moment = new Date(iso);
  switch (granularity) {
    case 'HOUR':
      return `${HOUR.format(moment)} UTC`;
    case 'WEEK':
      return `week of ${DAY.format(moment)}`;
    case 'MONTH':
      return MONTH.format(moment);
    default:
      return DAY.format(moment);
  }
}

export function rangeLabel(fromIso, toIso) {
  return `${FULL_DAY.format(new Date(fromIso))} – ${FULL_DAY.format(new Date(toIso))} (UTC)`;
}

export const GRANULARITY_NOUN = { HOUR: 'hour', DAY: 'day', WEEK: 'week', MONTH: 'month' };

const CHANNELS = {
  whatsapp: 'WhatsApp',
  copy_link: 'Copy link',
  direct_message: 'Direct message',
  instagram: 'Instagram',
  facebook: 'Facebook',
  x: 'X',
  sms: 'SMS',
  email: 'Email',
  other: 'Other',
  // Shares made anonymously: a cell of their own, whose channel is not told.
  undisclosed: 'Undisclosed (anonymous)',
};

let regions = null;
try {
  regions = new Intl.DisplayNames(['en'], { type: 'region' });
} catch {
  regions = null;
}

export function channelLabel(key) {
  return CHANNELS[key] ?? key;
}

export function regionLabel(key) {
  if (key === 'OTHER') return 'Other regions';
  try {
    const name = regions?.of(key);
    return name && name !== key ? `${name} (${key})` : key;
  } catch {
    return key;
  }
}

export function ageLabel(key) {
  return key === 'unknown' ? 'Unknown age' : key;
}

const AGE_ORDER = ['13-17', '18-24', '25-34', '35-44', '45-54', '55-64', '65+', 'unknown'];

/** Age bands youngest first (anything unexpected last, in the order given). */
export function byAgeBand(buckets) {
  const rank = (key) => {
    const index = AGE_ORDER.indexOf(key);
    return index === -1 ? AGE_ORDER.length : index;
  };
  return [...buckets].sort((a, b) => rank(a.key) - rank(b.key));
}

const SENTIMENTS = { positive: 'Positive', neutral: 'Neutral', negative: 'Negative' };

export function sentimentLabel(key) {
  return SENTIMENTS[key] ?? key;
}

/** Sentiment classes positive, neutral, negative (anything unexpected last). */
export function bySentiment(buckets) {
  const order = Object.keys(SENTIMENTS);
  const rank = (key) => (order.includes(key) ? order.indexOf(key) : order.length);
  return [...buckets].sort((a, b) => rank(a.key) - rank(b.key));
}

/** A field refusal or failure in plain words. `error` is a GraphQL error object. */
export function reason(error) {
  if (!error) return 'Not available.';
  const message = String(error.message ?? '');
  const code = error.extensions?.code;
  const floor = /finer than the (\w+) floor/.exec(message);
  if (floor) {
    return `That bucket size is finer than the ${floor[1]} floor: timelines are no finer than ${floor[1]} for you. Pick ${floor[1]} or coarser.`;
  }
  if (code === 'FORBIDDEN' && /creator only|own data only/.test(message)) return `${OWNER_ONLY_TEXT}.`;
  if (code === 'FORBIDDEN') return `Not available to you: ${message}`;
  if (code === 'NOT_FOUND') return message ? capitalize(message) + '.' : 'Not found.';
  if (code === 'BUDGET_EXHAUSTED') return `The privacy budget for today is spent: ${message}`;
  if (code === 'STORE_UNAVAILABLE' || code === 'POLICY_UNAVAILABLE') return 'Briefly unavailable: try again in a moment.';
  return message || 'Not available.';
}

export function isOwnerOnly(error) {
  return error?.extensions?.code === 'FORBIDDEN' && /creator only|own data only/.test(String(error.message ?? ''));
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
