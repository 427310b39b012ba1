// The GraphQL documents the dashboard sends (field names as in schema.graphql).

export const PAGE_SIZE = 20;

const VIDEO_ITEM = `
  edges { node { id publishedAt stats { views shares } } }
  pageInfo { hasNextPage endCursor }`;

/** The signed-in creator: totals and the first page of videos, most shared first. */
export const CREATOR = `
query Creator($id: ID!, $first: Int!) {
  creator(id: $id) {
    id
    totals { videos views likes comments shares followers }
    videos(first: $first, orderBy: SHARES) { ${VIDEO_ITEM} }
  }
}`;

/** The next page of the creator's videos. */
export const MORE_VIDEOS = `
query MoreVideos($id: ID!, $first: Int!, $after: String!) {
  creator(id: $id) {
    videos(first: $first, after: $after, orderBy: SHARES) { ${VIDEO_ITEM} }
  }
}`;

const BREAKDOWN = 'buckets { key count suppressed }';

/** One video: public counts, the creator's ratios, and its breakdowns. */
export const VIDEO = `
query Video($id: ID!) {
  video(id: $id) {
    id
    creatorId
    publishedAt
    stats { views likes comments shares likeRatio engagementRate completionRate averageWatchSeconds }
    shareChannels { ${BREAKDOWN} }
    region: audience(dimension: REGION) { ${BREAKDOWN} }
    ageBand: audience(dimension: AGE_BAND) { ${BREAKDOWN} }
  }
}`;

const TIMELINE = 'granularity from to buckets { start count suppressed }';

/** The video's share timeline and its creator's follower growth, at one granularity. */
export const TIMELINES = `
query Timelines($id: ID!, $creator: ID!, $granularity: Granularity!) {
  video(id: $id) { id shareTimeline(granularity: $granularity) { ${TIMELINE} } }
  creator(id: $creator) { id followerGrowth(granularity: $granularity) { ${TIMELINE} } }
}`;

export const GRANULARITIES = ['HOUR', 'DAY', 'WEEK', 'MONTH'];

// The insights of issue 15, each asked on its own: a field the policy refuses outright (or a server
// without it) blanks its own panel only, never the rest of the page.

/** The video's reach: distinct viewers. */
export const REACH = `
query Reach($id: ID!) {
  video(id: $id) { id stats { reach } }
}`;

/** Viewers still watching at each tenth of the video. */
export const RETENTION = `
query Retention($id: ID!) {
  video(id: $id) { id retention { points { percent share suppressed } } }
}`;

/** Commenters by the sentiment of what they wrote. */
export const SENTIMENT = `
query CommentSentiment($id: ID!) {
  video(id: $id) { id commentSentiment { ${BREAKDOWN} } }
}`;

/** The releases whose shares per hour stood far above the video's usual pace. */
export const SURGES = `
query ShareSurges($id: ID!) {
  video(id: $id) { id shareSurges { releasedAt factor sharesPerHour } }
}`;

/** The creator's viewers by hour of the week, in a time zone. */
export const ACTIVITY = `
query AudienceActivity($id: ID!, $timeZone: String!) {
  creator(id: $id) { id audienceActivity(timeZone: $timeZone) { timeZone cells { dayOfWeek hour viewers suppressed } } }
}`;
