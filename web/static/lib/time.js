// Times: stored and sent in UTC (RFC 3339); shown in UTC unless the person
// chose local time. Event times carry nanoseconds, which Date cannot hold,
// so UTC is shown from the string itself.

const pad = (n, w = 2) => String(n).padStart(w, '0');

export function localZoneName() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local';
  } catch (e) {
    return 'local';
  }
}

// formatTime shows an RFC 3339 time as "2026-06-20 14:32:01" (with the
// fraction when precise), in UTC or local time.
export function formatTime(iso, tz, { precise = false } = {}) {
  if (!iso) return '';
  if (tz !== 'local') {
    const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?/.exec(iso);
    if (m) return `${m[1]} ${m[2]}${precise && m[3] ? m[3] : ''}`;
  }
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  if (tz !== 'local') return d.toISOString().replace('T', ' ').slice(0, precise ? 23 : 19);
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return precise ? `${s}.${pad(d.getMilliseconds(), 3)}` : s;
}

export function zoneLabel(tz) {
  return tz === 'local' ? `local time, ${localZoneName()}` : 'UTC';
}

// Range presets of the filter bar.
export const PRESETS = [
  { id: '1h', label: 'Last hour', ms: 3600e3 },
  { id: '24h', label: 'Last 24 hours', ms: 24 * 3600e3 },
  { id: '7d', label: 'Last 7 days', ms: 7 * 24 * 3600e3 },
  { id: '30d', label: 'Last 30 days', ms: 30 * 24 * 3600e3 },
];

// presetOf names the preset a window is (since about that long ago, no
// end), or ''.
export function presetOf(since, until, now = Date.now()) {
  if (!since || until) return '';
  const ago = now - Date.parse(since);
  for (const p of PRESETS) {
    if (Math.abs(ago - p.ms) < Math.max(60e3, p.ms / 100)) return p.id;
  }
  return '';
}

export function isoSince(ms, now = Date.now()) {
  // Whole seconds: a tidy, shareable address.
  return new Date(Math.floor((now - ms) / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

// toInput turns an RFC 3339 time into a datetime-local value in tz, and
// fromInput back.
export function toInput(iso, tz) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return '';
  if (tz !== 'local') return d.toISOString().slice(0, 16);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fromInput(value, tz) {
  if (!value) return '';
  const d = tz === 'local' ? new Date(value) : new Date(`${value}:00Z`);
  return isNaN(d) ? '' : d.toISOString().replace('.000Z', 'Z');
}

export function formatDuration(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
