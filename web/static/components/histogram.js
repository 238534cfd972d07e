// The histogram of the matching events over the view's window (bars from
// GET /api/v1/events/stats). Click a bar, or drag across bars, to zoom the
// view to that range; with the keyboard, arrows choose a bar, Enter zooms
// to it, minus zooms out.
import { useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { formatDuration, formatTime, zoneLabel } from '../lib/time.js';
import { timeZone } from '../lib/prefs.js';

const W = 1000;
const H = 120;

const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');

export function Histogram({ stats, loading, onZoom }) {
  const tz = timeZone.use();
  const svg = useRef(null);
  const [drag, setDrag] = useState(null); // {from, to} in bar units
  const [active, setActive] = useState(-1);
  const bars = (stats && stats.buckets) || [];
  const step = stats ? stats.interval_seconds * 1000 : 0;
  const max = bars.reduce((m, b) => Math.max(m, b.count), 0);
  const bw = bars.length ? W / bars.length : W;

  const barAt = (clientX) => {
    const r = svg.current.getBoundingClientRect();
    const x = ((clientX - r.left) / r.width) * W;
    return Math.max(0, Math.min(bars.length - 1, Math.floor(x / bw)));
  };
  const zoomTo = (a, b) => {
    const lo = Math.min(a, b);
    const hi = Math.max(a, b);
    const since = Math.max(Date.parse(bars[lo].start), Date.parse(stats.since));
    const until = Math.min(Date.parse(bars[hi].start) + step, Date.parse(stats.until));
    if (until > since) onZoom(iso(since), iso(until));
  };
  const zoomOut = () => {
    if (!stats || !stats.since) return;
    const since = Date.parse(stats.since);
    const until = Date.parse(stats.until);
    const span = until - since;
    onZoom(iso(since - span / 2), until + span / 2 >= Date.now() ? '' : iso(until + span / 2));
  };

  const onPointerDown = (e) => {
    if (!bars.length || e.button !== 0) return;
    e.currentTarget.setPointerCapture(e.pointerId);
    const b = barAt(e.clientX);
    setDrag({ from: b, to: b });
  };
  const onPointerMove = (e) => {
    if (drag) setDrag({ ...drag, to: barAt(e.clientX) });
  };
  const onPointerUp = (e) => {
    if (!drag) return;
    const to = barAt(e.clientX);
    setDrag(null);
    if (bars[drag.from].count === 0 && drag.from === to) return;
    zoomTo(drag.from, to);
  };
  const onKeyDown = (e) => {
    if (!bars.length) return;
    let next = active;
    switch (e.key) {
      case 'ArrowRight': next = Math.min(bars.length - 1, active + 1); break;
      case 'ArrowLeft': next = Math.max(0, active < 0 ? bars.length - 1 : active - 1); break;
      case 'Home': next = 0; break;
      case 'End': next = bars.length - 1; break;
      case 'Enter':
      case ' ':
        if (active >= 0) zoomTo(active, active);
        e.preventDefault();
        return;
      case '-':
        zoomOut();
        e.preventDefault();
        return;
      default:
        return;
    }
    e.preventDefault();
    setActive(next);
  };

  const sel = drag ? [Math.min(drag.from, drag.to), Math.max(drag.from, drag.to)] : null;
  const describe = (i) => `${formatTime(bars[i].start, tz)}, ${formatDuration(stats.interval_seconds)}: ${bars[i].count.toLocaleString()} events`;
  const summary = stats && stats.since
    ? `${stats.total.toLocaleString()} events from ${formatTime(stats.since, tz)} to ${formatTime(stats.until, tz)} (${zoneLabel(tz)}), ${bars.length} bars of ${formatDuration(stats.interval_seconds)}.`
    : 'No events in this view.';

  return html`
    <figure class="histogram" aria-busy=${loading ? 'true' : 'false'}>
      <figcaption>
        <span>Events over time</span>
        <span class="hint">Click or drag across bars to zoom</span>
        <button type="button" class="link" onClick=${zoomOut} disabled=${!stats || !stats.since}>Zoom out</button>
      </figcaption>
      <div class="histogram-plot" tabindex="0" role="group"
        aria-label="Histogram of the matching events. Left and right arrows choose a bar, Enter zooms to it, minus zooms out."
        aria-describedby="histogram-summary histogram-active" onKeyDown=${onKeyDown}>
        <svg ref=${svg} viewBox=${`0 0 ${W} ${H}`} preserveAspectRatio="none" aria-hidden="true"
          onPointerDown=${onPointerDown} onPointerMove=${onPointerMove} onPointerUp=${onPointerUp}
          onPointerCancel=${() => setDrag(null)}>
          ${bars.map((b, i) => {
            const h = max ? Math.max(b.count ? 2 : 0, (b.count / max) * (H - 4)) : 0;
            const picked = (sel && i >= sel[0] && i <= sel[1]) || i === active;
            return html`<rect class=${picked ? 'bar picked' : 'bar'} x=${i * bw + bw * 0.1} width=${bw * 0.8} y=${H - h} height=${h} data-start=${b.start}>
              <title>${describe(i)}</title></rect>`;
          })}
          ${sel && html`<rect class="selection" x=${sel[0] * bw} width=${(sel[1] - sel[0] + 1) * bw} y="0" height=${H} />`}
        </svg>
        <div class="axis" aria-hidden="true">
          <span>${stats && stats.since ? formatTime(stats.since, tz) : ''}</span>
          <span>max ${max.toLocaleString()}</span>
          <span>${stats && stats.until ? formatTime(stats.until, tz) : ''}</span>
        </div>
      </div>
      <p id="histogram-summary" class="visually-hidden">${summary}</p>
      <p id="histogram-active" class="visually-hidden" aria-live="polite">${active >= 0 && bars[active] ? describe(active) : ''}</p>
    </figure>`;
}
