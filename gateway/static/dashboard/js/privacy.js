// The "How these numbers protect people" panel: the answers' `extensions.privacy`, in plain words.

import { byId, h, replace } from './dom.js';
import { integer } from './format.js';

/** What the answers behind the numbers on screen did, taken together. */
export function combine(reports) {
  const present = reports.filter(Boolean);
  if (!present.length) return null;
  const last = present[present.length - 1];
  const budgets = present.map((report) => report.budgetLeft).filter((value) => value !== null && value !== undefined);
  return {
    k: last.k,
    granularityFloor: last.granularityFloor,
    suppressedCells: present.reduce((sum, report) => sum + (report.suppressedCells ?? 0), 0),
    noised: present.some((report) => report.noised),
    epsilonSpent: present.reduce((sum, report) => sum + (report.epsilonSpent ?? 0), 0),
    budgetLeft: budgets.length ? budgets[budgets.length - 1] : null,
  };
}

function note(testid, value, ...text) {
  return h('li', { 'data-testid': testid, 'data-value': value === null || value === undefined ? '' : String(value) }, ...text);
}

function epsilon(value) {
  return Number(value.toFixed(2)).toString();
}

export function renderPrivacy(reports) {
  const list = byId('privacy-notes');
  const report = combine(reports);
  if (!report) {
    replace(list, h('li', { class: 'hint' }, 'Each answer says how it protected people; open a video to see.'));
    return;
  }
  const { k, granularityFloor: floor, suppressedCells: hidden } = report;
  const notes = [
    note('privacy-k', k, `Groups of fewer than ${k} people are never shown: such a cell reads “hidden”, never as a number.`),
    note('privacy-steps', k, `Counts grow in steps of at least ${k} new people, so the newest activity shows up a little later.`),
    note('privacy-floor', floor, `Timelines are no finer than ${floor}.`),
    note('privacy-suppressed', hidden,
      hidden === 0
        ? 'No cell needed hiding in what is shown here.'
        : `${integer(hidden)} ${hidden === 1 ? 'cell was' : 'cells were'} hidden to protect people's privacy.`),
    report.noised
      ? note('privacy-noise', 'true',
          `Breakdown counts carry a little random noise, so no one person's activity can be worked out`,
          ` (privacy budget spent: ε ${epsilon(report.epsilonSpent)}`,
          report.budgetLeft === null ? ')' : `; left today: ε ${epsilon(report.budgetLeft)})`, '.')
      : note('privacy-noise', 'false', 'No noise was needed: every number is an exact release of many people.'),
    h('li', {}, 'Nobody who shared, liked or watched is ever named: only counts of groups.'),
  ];
  replace(list, ...notes);
}
