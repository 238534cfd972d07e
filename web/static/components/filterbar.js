// The filter bar: time range (presets or custom), full text, and any
// number of filters of the API, combined. Every change is a new address
// (onChange gets the new parameters).
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { FILTERS, filterLabel, filtersOf, withFilter, withParam, withoutFilter } from '../lib/query.js';
import { PRESETS, formatTime, fromInput, isoSince, presetOf, toInput, zoneLabel } from '../lib/time.js';
import { timeZone } from '../lib/prefs.js';

// Categories offered as type prefixes even before the stats name them.
const CATEGORIES = ['agent', 'ai', 'audit', 'auth', 'board', 'privacy', 'retention', 'settings', 'task', 'team'];

function RangePicker({ params, onChange }) {
  const tz = timeZone.use();
  const since = params.get('since') || '';
  const until = params.get('until') || '';
  const preset = presetOf(since, until);
  const [custom, setCustom] = useState(false);
  const [from, setFrom] = useState(toInput(since, tz));
  const [to, setTo] = useState(toInput(until, tz));
  useEffect(() => {
    setFrom(toInput(since, tz));
    setTo(toInput(until, tz));
  }, [since, until, tz]);

  const choose = (ms) => onChange(withParam(withParam(params, 'since', ms ? isoSince(ms) : ''), 'until', ''));
  const applyCustom = () => onChange(withParam(withParam(params, 'since', fromInput(from, tz)), 'until', fromInput(to, tz)));
  const described = since || until
    ? `${since ? formatTime(since, tz) : 'the beginning'} to ${until ? formatTime(until, tz) : 'now'} (${zoneLabel(tz)})`
    : 'all time';

  return html`
    <fieldset class="range">
      <legend>Time range <span class="range-now">${described}</span></legend>
      <div class="presets">
        ${PRESETS.map((p) => html`
          <button type="button" class="chip-button" aria-pressed=${preset === p.id} onClick=${() => choose(p.ms)}>${p.label}</button>`)}
        <button type="button" class="chip-button" aria-pressed=${!since && !until} onClick=${() => choose(0)}>All time</button>
        <button type="button" class="chip-button" aria-expanded=${custom} aria-controls="custom-range" onClick=${() => setCustom(!custom)}>Custom…</button>
      </div>
      ${custom && html`
        <div class="custom-range" id="custom-range">
          <label>From <span class="visually-hidden">(${zoneLabel(tz)})</span>
            <input type="datetime-local" value=${from} onInput=${(e) => setFrom(e.currentTarget.value)} /></label>
          <label>To <span class="visually-hidden">(${zoneLabel(tz)})</span>
            <input type="datetime-local" value=${to} onInput=${(e) => setTo(e.currentTarget.value)} /></label>
          <button type="button" class="secondary" onClick=${applyCustom}>Apply range</button>
          <span class="hint">${zoneLabel(tz)}</span>
        </div>`}
    </fieldset>`;
}

export function FilterBar({ params, stats, onChange }) {
  const [text, setText] = useState(params.get('q') || '');
  const [field, setField] = useState('actor_email');
  const [value, setValue] = useState('');
  useEffect(() => setText(params.get('q') || ''), [params.get('q')]);

  const def = FILTERS.find((f) => f.name === field) || FILTERS[0];
  const suggestions = suggestionsFor(field, stats);
  const filters = filtersOf(params).filter(([k]) => k !== 'q');

  const submitText = (e) => {
    e.preventDefault();
    onChange(withParam(params, 'q', text.trim()));
  };
  const addFilter = (e) => {
    e.preventDefault();
    const v = value.trim();
    if (!v) return;
    setValue('');
    onChange(withFilter(params, field, v));
  };

  return html`
    <section class="filterbar" aria-label="Filters">
      <${RangePicker} params=${params} onChange=${onChange} />
      <form class="search" role="search" onSubmit=${submitText}>
        <label for="q">Search</label>
        <input id="q" type="search" value=${text} onInput=${(e) => setText(e.currentTarget.value)}
          placeholder="Words in the events: all must match, * makes a prefix" aria-describedby="q-hint" />
        <button type="submit" class="secondary">Search</button>
        <span id="q-hint" class="visually-hidden">Searches the events' words; content words only if your role may read content.</span>
      </form>
      <form class="add-filter" onSubmit=${addFilter}>
        <label for="filter-field">Filter by</label>
        <select id="filter-field" value=${field} onChange=${(e) => { setField(e.currentTarget.value); setValue(''); }}>
          ${FILTERS.map((f) => html`<option value=${f.name}>${f.label}</option>`)}
        </select>
        <label for="filter-value" class="visually-hidden">${def.label} value</label>
        ${def.options
          ? html`<select id="filter-value" value=${value} onChange=${(e) => setValue(e.currentTarget.value)}>
              <option value="">Choose…</option>
              ${def.options.map((o) => html`<option value=${o}>${o}</option>`)}
            </select>`
          : html`<input id="filter-value" type="text" list="filter-suggestions" value=${value} placeholder=${def.placeholder || ''}
              autocomplete="off" onInput=${(e) => setValue(e.currentTarget.value)} />
            <datalist id="filter-suggestions">${suggestions.map((s) => html`<option value=${s} />`)}</datalist>`}
        <button type="submit" class="secondary">Add filter</button>
      </form>
      ${filters.length > 0 && html`
        <ul class="chips" aria-label="Active filters">
          ${filters.map(([k, v]) => html`
            <li class="chip"><span>${filterLabel(k)}: <strong>${v}</strong></span>
              <button type="button" class="chip-remove" aria-label=${`Remove filter ${filterLabel(k)}: ${v}`}
                onClick=${() => onChange(withoutFilter(params, k, v))}>×</button></li>`)}
          <li><button type="button" class="link" onClick=${() => onChange(clearFilters(params))}>Clear all filters</button></li>
        </ul>`}
    </section>`;
}

function clearFilters(params) {
  const p = new URLSearchParams();
  for (const k of ['since', 'until', 'q', 'order']) if (params.has(k)) p.set(k, params.get(k));
  return p;
}

// suggestionsFor offers values seen in the current view (top values) and,
// for the type, category prefixes such as auth.*.
function suggestionsFor(field, stats) {
  const top = (stats && stats.top && stats.top[field]) || [];
  const out = top.map((t) => t.value);
  if (field === 'type') {
    const cats = new Set(CATEGORIES);
    for (const t of (stats && stats.top && stats.top.type) || []) cats.add(t.value.split('.')[0]);
    for (const c of [...cats].sort()) out.push(`${c}.*`);
  }
  return [...new Set(out)];
}
