// The person's display preferences, kept in this browser: theme and time
// zone (times are UTC unless they chose local time).
import { shared } from './store.js';

function read(key, allowed, fallback) {
  try {
    const v = localStorage.getItem(key);
    return allowed.includes(v) ? v : fallback;
  } catch (e) {
    return fallback;
  }
}

function write(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch (e) { /* private mode: for this page only */ }
}

export const theme = shared(read('veritrail.theme', ['system', 'light', 'dark'], 'system'));
export const timeZone = shared(read('veritrail.tz', ['utc', 'local'], 'utc'));

const systemDark = matchMedia('(prefers-color-scheme: dark)');

function applyTheme(t) {
  const dark = t === 'dark' || (t === 'system' && systemDark.matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

// Following the system: its changes apply at once.
systemDark.addEventListener('change', () => applyTheme(theme.get()));

export function setTheme(t) {
  write('veritrail.theme', t);
  applyTheme(t);
  theme.set(t);
}

export function setTimeZone(tz) {
  write('veritrail.tz', tz);
  timeZone.set(tz);
}

export function readJSON(key, fallback) {
  try {
    const v = localStorage.getItem(key);
    return v === null ? fallback : JSON.parse(v);
  } catch (e) {
    return fallback;
  }
}

export function writeJSON(key, value) {
  write(key, JSON.stringify(value));
}
