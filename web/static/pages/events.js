// The Audit Logs page (/events, /events/{id}): filter bar, histogram, top
// values, the results table, live tail and export; the detail panel of an
// event on the side. The address holds the view: the API's own list
// parameters.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { navigate } from '../lib/router.js';
import { announce } from '../lib/announce.js';
import { filtersOnly, href, viewParams, withFilter, withParam } from '../lib/query.js';
import { readJSON, timeZone, writeJSON } from '../lib/prefs.js';
import { FilterBar } from '../components/filterbar.js';
import { Histogram } from '../components/histogram.js';
import { TopValues } from '../components/topvalues.js';
import { COLUMNS, DEFAULT_COLUMNS, ResultsTable } from '../components/table.js';
import { DetailPanel } from '../components/detail.js';
import { ExportDialog } from '../components/export.js';

// The first page is small, to paint soon; then larger pages as one scrolls.
const FIRST_PAGE = 150;
const PAGE_SIZE = 500;
const STATS_TOP = 'actor_id,actor_email,type,outcome,connector,tool,decision';

// slim keeps what the table shows of an event: content stays on the server
// until the detail asks for it (100,000 rows must fit in a tab).
function slim(e) {
  delete e.content;
  delete e.content_salt;
  return e;
}

// useEventList loads the view's events page by page (keyset: the API's
// cursor), starting over when the view changes.
function useEventList(viewKey) {
  // state.view is the view whose rows state holds: for the one render
  // between a change of address and the effect that starts over, the rows
  // are the old view's, so the list counts as loading.
  const [state, setState] = useState({ view: viewKey, rows: [], next: null, loading: true, error: '', done: false });
  const inflight = useRef(null);
  const view = useRef(viewKey);

  const load = async (cursor) => {
    if (inflight.current) return;
    const ctrl = new AbortController();
    inflight.current = ctrl;
    const key = viewKey;
    setState((s) => ({ ...s, loading: true, error: '' }));
    const params = new URLSearchParams(key);
    params.set('limit', String(cursor ? PAGE_SIZE : FIRST_PAGE));
    if (cursor) params.set('cursor', cursor);
    try {
      const page = await api.get('/api/v1/events', { params, signal: ctrl.signal });
      if (view.current !== key) return;
      const rows = page.data.map(slim);
      setState((s) => {
        const seen = cursor ? s.rows : [];
        return { ...s, rows: cursor ? seen.concat(rows) : rows, next: page.has_more ? page.next_cursor : null, loading: false, error: '', done: !page.has_more };
      });
      if (!cursor) announce(`${rows.length}${page.has_more ? ' or more' : ''} events`);
    } catch (e) {
      if (e.name !== 'AbortError' && view.current === key) setState((s) => ({ ...s, loading: false, error: e.message }));
    } finally {
      if (inflight.current === ctrl) inflight.current = null;
    }
  };

  useEffect(() => {
    view.current = viewKey;
    if (inflight.current) inflight.current.abort();
    inflight.current = null;
    setState({ view: viewKey, rows: [], next: null, loading: true, error: '', done: false });
    load(null);
  }, [viewKey]);

  const loadMore = () => {
    if (state.next && !inflight.current) load(state.next);
  };
  const prepend = (events, atEnd) => setState((s) => {
    const have = new Set(s.rows.slice(0, 2000).map((r) => r.id));
    const fresh = events.filter((e) => !have.has(e.id)).map((e) => ({ ...slim(e), fresh: true }));
    return { ...s, rows: atEnd ? s.rows.concat(fresh) : fresh.reverse().concat(s.rows) };
  });
  return { ...state, loading: state.loading || state.view !== viewKey, loadMore, prepend };
}

// useStats reads the view's histogram and top values.
function useStats(viewKey) {
  const [stats, setStats] = useState(null);
  const [loading, setLoading] = useState(true);
  useEffect(() => {
    const ctrl = new AbortController();
    setLoading(true);
    const params = new URLSearchParams(viewKey);
    params.delete('order');
    params.set('bars', '60');
    params.set('top', STATS_TOP);
    api.get('/api/v1/events/stats', { params, signal: ctrl.signal })
      .then((st) => { setStats(st); setLoading(false); })
      .catch((e) => { if (e.name !== 'AbortError') { setStats(null); setLoading(false); } });
    return () => ctrl.abort();
  }, [viewKey]);
  return { stats, loading };
}

// useLiveTail follows the view's filters as new events are committed
// (GET /api/v1/events/stream); pausing keeps the place, resuming goes on
// from it, so nothing is missed.
function useLiveTail(viewKey, on, paused, onEvents) {
  const cursor = useRef('');
  const [rate, setRate] = useState(0);
  const [error, setError] = useState('');
  const arrivals = useRef([]);
  const handler = useRef(onEvents);
  handler.current = onEvents;

  useEffect(() => {
    cursor.current = '';
  }, [viewKey, on]);

  useEffect(() => {
    if (!on || paused) return undefined;
    const params = filtersOnly(new URLSearchParams(viewKey));
    if (cursor.current) params.set('cursor', cursor.current);
    const src = new EventSource(href('/api/v1/events/stream', params));
    setError('');
    src.addEventListener('events', (m) => {
      cursor.current = m.lastEventId;
      const page = JSON.parse(m.data);
      const now = Date.now();
      for (let i = 0; i < page.data.length; i++) arrivals.current.push(now);
      handler.current(page.data);
    });
    src.onerror = () => setError(src.readyState === EventSource.CLOSED ? 'The live tail stopped; turn it off and on again.' : 'Reconnecting…');
    src.onopen = () => setError('');
    const t = setInterval(() => {
      const now = Date.now();
      arrivals.current = arrivals.current.filter((a) => now - a < 10000);
      setRate(arrivals.current.length / 10);
    }, 1000);
    return () => {
      src.close();
      clearInterval(t);
    };
  }, [viewKey, on, paused]);
  return { rate, error };
}

function ColumnChooser({ columnIds, onChange }) {
  return html`
    <details class="columns">
      <summary>Columns</summary>
      <fieldset>
        <legend class="visually-hidden">Columns shown</legend>
        ${COLUMNS.filter((c) => !c.fixed).map((c) => html`
          <label class="check"><input type="checkbox" checked=${columnIds.includes(c.id)}
            onChange=${(e) => onChange(e.currentTarget.checked ? COLUMNS.map((x) => x.id).filter((id) => id === c.id || columnIds.includes(id)) : columnIds.filter((id) => id !== c.id))} />
            ${c.label}</label>`)}
      </fieldset>
    </details>`;
}

export function EventsPage({ params: route, loc }) {
  const tz = timeZone.use();
  const params = viewParams(loc.search);
  const viewKey = String(params);
  const list = useEventList(viewKey);
  const { stats, loading: statsLoading } = useStats(viewKey);
  const [live, setLive] = useState(false);
  const [paused, setPaused] = useState(false);
  const [exporting, setExporting] = useState(false);
  const [columnIds, setColumnIds] = useState(() => readJSON('veritrail.columns', DEFAULT_COLUMNS));
  const ascending = params.get('order') === 'asc';
  const tail = useLiveTail(viewKey, live, paused, (events) => list.prepend(events, ascending));
  const openId = route.id;

  const go = (p, opts) => navigate(href('/events', p), opts);
  const onFilter = (name, value) => go(withFilter(params, name, value));
  const onZoom = (since, until) => go(withParam(withParam(params, 'since', since), 'until', until));
  const onOpen = (id) => navigate(href(`/events/${encodeURIComponent(id)}`, params));
  const onClose = () => {
    navigate(href('/events', params));
    const row = document.querySelector(`[data-event-id="${CSS.escape(openId)}"]`);
    if (row) row.focus();
  };
  const toggleLive = () => {
    if (!live && params.get('until')) go(withParam(params, 'until', ''), { replace: true });
    setLive(!live);
    setPaused(false);
  };
  useEffect(() => writeJSON('veritrail.columns', columnIds), [columnIds]);

  return html`
    <div class=${`events-page${openId ? ' with-detail' : ''}`}>
      <div class="events-main">
        <h1>Audit logs</h1>
        <${FilterBar} params=${params} stats=${stats} onChange=${(p) => go(p)} />
        <div class="overview">
          <${Histogram} stats=${stats} loading=${statsLoading} onZoom=${onZoom} />
          <${TopValues} stats=${stats} onFilter=${onFilter} />
        </div>
        <div class="toolbar" role="toolbar" aria-label="Results">
          <p class="count" role="status">${stats ? `${stats.total.toLocaleString()} matching events` : ''}</p>
          <div class="live">
            <button type="button" aria-pressed=${live} onClick=${toggleLive} class=${live ? 'live-on' : 'secondary'}>Live tail</button>
            ${live && html`
              <button type="button" class="secondary" aria-pressed=${paused} onClick=${() => setPaused(!paused)}>${paused ? 'Resume' : 'Pause'}</button>
              <span class="rate" role="status">${paused ? 'paused' : `${tail.rate.toFixed(1)} events/s`}</span>
              ${tail.error && html`<span class="error">${tail.error}</span>`}`}
          </div>
          <${ColumnChooser} columnIds=${columnIds} onChange=${setColumnIds} />
          <button type="button" class="secondary" onClick=${() => setExporting(true)}>Export</button>
        </div>
        <${ResultsTable} rows=${list.rows} columnIds=${columnIds} hasMore=${!!list.next} loading=${list.loading} error=${list.error}
          onLoadMore=${list.loadMore} selectedId=${openId} onOpen=${onOpen} onFilter=${onFilter} tz=${tz} />
      </div>
      ${openId && html`<${DetailPanel} id=${openId} onClose=${onClose} />`}
      ${exporting && html`<${ExportDialog} params=${params} total=${stats ? stats.total : undefined} onClose=${() => setExporting(false)} />`}
    </div>`;
}
