// The results table: every loaded event of the view, drawn as a window of
// the rows in sight (fixed row height), so 100,000 loaded rows scroll as
// smoothly as 100. More rows load by keyset (the API's cursor) as the
// window nears the end. A grid for assistive technology: one tab stop,
// arrows and Page Up/Down move between rows, Enter opens the event.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { formatTime, zoneLabel } from '../lib/time.js';

export const ROW_HEIGHT = 32;
const OVERSCAN = 12;

const filterOn = (name) => (e, v) => (v ? [name, v] : null);

// COLUMNS the table can show; value is the text of a cell, filter the
// [parameter, value] a click on it adds to the view.
export const COLUMNS = [
  { id: 'time', label: 'Time', width: '12rem', fixed: true, value: (e) => e.time },
  { id: 'type', label: 'Type', width: '13rem', value: (e) => e.type, filter: filterOn('type') },
  {
    id: 'actor', label: 'Actor', width: '15rem',
    value: (e) => (e.actor ? e.actor.email || e.actor.name || e.actor.id : ''),
    filter: (e) => (e.actor && e.actor.email ? ['actor_email', e.actor.email] : e.actor && e.actor.id ? ['actor_id', e.actor.id] : null),
  },
  { id: 'outcome', label: 'Outcome', width: '6.5rem', value: (e) => e.outcome || '', filter: filterOn('outcome') },
  {
    id: 'target', label: 'Target', width: '13rem',
    value: (e) => (e.target ? e.target.name || e.target.id || '' : ''),
    filter: (e) => (e.target && e.target.id ? ['target_id', e.target.id] : null),
  },
  { id: 'agent', label: 'Agent', width: '10rem', value: (e) => e.agent_id || '', filter: filterOn('agent_id') },
  { id: 'task', label: 'Task', width: '10rem', value: (e) => e.task_id || '', filter: filterOn('task_id') },
  { id: 'session', label: 'Session', width: '10rem', value: (e) => e.session_id || '', filter: filterOn('session_id') },
  { id: 'connector', label: 'Connector', width: '8rem', value: (e) => e.connector || '', filter: filterOn('connector') },
  { id: 'tool', label: 'Tool', width: '10rem', value: (e) => e.tool || '', filter: filterOn('tool') },
  { id: 'status', label: 'Status', width: '5rem', value: (e) => (e.status === undefined ? '' : String(e.status)), filter: filterOn('status') },
  { id: 'decision', label: 'Decision', width: '7rem', value: (e) => (e.decision ? e.decision.action : ''), filter: filterOn('decision') },
  { id: 'ip', label: 'IP', width: '9rem', value: (e) => (e.context && e.context.ip) || '', filter: filterOn('ip') },
  { id: 'team', label: 'Team', width: '9rem', value: (e) => (e.context && e.context.team_id) || '', filter: filterOn('team_id') },
  { id: 'duration', label: 'Duration', width: '6rem', value: (e) => (e.duration_ms === undefined ? '' : `${e.duration_ms} ms`) },
];

export const DEFAULT_COLUMNS = ['time', 'type', 'actor', 'outcome', 'target', 'tool', 'decision', 'ip'];

export function ResultsTable({ rows, columnIds, hasMore, loading, error, onLoadMore, selectedId, onOpen, onFilter, tz }) {
  const scroller = useRef(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewHeight, setViewHeight] = useState(600);
  const [focusIdx, setFocusIdx] = useState(0);
  const wantFocus = useRef(false);
  const firstId = useRef(null);
  const columns = COLUMNS.filter((c) => columnIds.includes(c.id));
  const template = columns.map((c) => c.width).join(' ') + ' minmax(0, 1fr)';

  useEffect(() => {
    const el = scroller.current;
    if (!el) return undefined;
    const ro = new ResizeObserver(() => setViewHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // Rows arriving at the top (live tail) must not push what is read away.
  useLayoutEffect(() => {
    const el = scroller.current;
    const prev = firstId.current;
    firstId.current = rows.length ? rows[0].id : null;
    if (!el || !prev || !rows.length || rows[0].id === prev || el.scrollTop === 0) return;
    const k = rows.findIndex((r) => r.id === prev);
    if (k > 0 && k < 5000) {
      el.scrollTop += k * ROW_HEIGHT;
      setFocusIdx((i) => i + k);
    }
  }, [rows]);

  let frame = 0;
  const onScroll = (e) => {
    const el = e.currentTarget;
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      setScrollTop(el.scrollTop);
    });
  };

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + viewHeight) / ROW_HEIGHT) + OVERSCAN);

  useEffect(() => {
    if (hasMore && !loading && !error && last >= rows.length - 4 * OVERSCAN) onLoadMore();
  }, [last, rows.length, hasMore, loading, error]);

  // Keyboard moves: bring the row into view, then focus it once drawn.
  const moveTo = (i) => {
    const idx = Math.max(0, Math.min(rows.length - 1, i));
    const el = scroller.current;
    const body = el.clientHeight - ROW_HEIGHT; // the header row is sticky
    if (idx * ROW_HEIGHT < el.scrollTop) el.scrollTop = idx * ROW_HEIGHT;
    else if ((idx + 1) * ROW_HEIGHT > el.scrollTop + body) el.scrollTop = (idx + 1) * ROW_HEIGHT - body;
    setScrollTop(el.scrollTop);
    wantFocus.current = true;
    setFocusIdx(idx);
  };
  useEffect(() => {
    if (!wantFocus.current) return;
    const row = scroller.current && scroller.current.querySelector(`[aria-rowindex="${focusIdx + 2}"]`);
    if (row) {
      wantFocus.current = false;
      row.focus({ preventScroll: true });
    }
  });

  const page = Math.max(1, Math.floor(viewHeight / ROW_HEIGHT) - 1);
  const onKeyDown = (e) => {
    if (!rows.length || e.target.getAttribute('role') !== 'row') return;
    const keys = { ArrowDown: focusIdx + 1, ArrowUp: focusIdx - 1, PageDown: focusIdx + page, PageUp: focusIdx - page, Home: 0, End: rows.length - 1 };
    if (e.key in keys) {
      e.preventDefault();
      moveTo(keys[e.key]);
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      onOpen(rows[focusIdx].id);
    }
  };

  // The grid itself takes focus only when the row to return to is out of
  // sight; it hands focus on to the first row in view.
  const onGridFocus = (e) => {
    if (e.target === e.currentTarget && rows.length) moveTo(Math.floor(e.currentTarget.scrollTop / ROW_HEIGHT));
  };

  const header = html`
    <div role="rowgroup" class="thead">
      <div role="row" aria-rowindex="1" class="tr" style=${{ gridTemplateColumns: template }}>
        ${columns.map((c) => html`<div role="columnheader" class="th">${c.id === 'time' ? `Time (${zoneLabel(tz)})` : c.label}</div>`)}
        <div role="columnheader" class="th"><span class="visually-hidden">More</span></div>
      </div>
    </div>`;

  const tabbable = Math.min(focusIdx, rows.length - 1);
  const body = [];
  for (let i = first; i < last; i++) {
    const e = rows[i];
    body.push(html`
      <div role="row" key=${e.id} class=${`tr${e.id === selectedId ? ' selected' : ''}${e.fresh ? ' fresh' : ''}`}
        aria-rowindex=${i + 2} aria-selected=${e.id === selectedId ? 'true' : 'false'} data-event-id=${e.id}
        tabindex=${i === tabbable ? 0 : -1} style=${{ gridTemplateColumns: template, transform: `translateY(${i * ROW_HEIGHT}px)` }}
        onClick=${() => { setFocusIdx(i); onOpen(e.id); }} onFocus=${() => setFocusIdx(i)}>
        ${columns.map((c) => {
          const text = c.id === 'time' ? formatTime(e.time, tz) : c.value(e);
          const f = c.filter && text ? c.filter(e, c.value(e)) : null;
          return html`<div role="gridcell" class=${`td col-${c.id}`}>${f
            ? html`<button type="button" tabindex="-1" class="cell-filter" title=${`Filter by ${c.label.toLowerCase()}: ${f[1]}`}
                onClick=${(ev) => { ev.stopPropagation(); onFilter(f[0], f[1]); }}>${text}</button>`
            : text}</div>`;
        })}
        <div role="gridcell" class="td"></div>
      </div>`);
  }

  let status = null;
  if (error) status = html`<p class="error" role="alert">${error}</p>`;
  else if (!rows.length && loading) status = html`<p class="loading" role="status">Loading events…</p>`;
  else if (!rows.length) status = html`<p class="empty" role="status">No events match this view.</p>`;

  return html`
    <div class="results">
      <div class="grid" role="grid" ref=${scroller} onScroll=${onScroll} onKeyDown=${onKeyDown}
        tabindex=${rows.length && tabbable >= first && tabbable < last ? -1 : 0} onFocus=${onGridFocus}
        aria-label="Events" aria-rowcount=${hasMore ? -1 : rows.length + 1} aria-colcount=${columns.length + 1}
        aria-busy=${loading ? 'true' : 'false'}>
        ${header}
        <div role="rowgroup" class="tbody" style=${{ height: `${rows.length * ROW_HEIGHT}px` }}>${body}</div>
      </div>
      ${status}
      <p class="table-foot" role="status">
        ${rows.length.toLocaleString()} loaded${hasMore ? (loading ? ', loading more…' : ', more as you scroll') : rows.length ? ', all loaded' : ''}
      </p>
    </div>`;
}
