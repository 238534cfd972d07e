// Top values of the view: the most frequent actors, types, outcomes,
// connectors, tools and decisions, with counts; choosing one filters by it.
import { html } from '../lib/html.js';

export const TOP_FIELDS = [
  { name: 'actor_id', label: 'Actor' },
  { name: 'type', label: 'Type' },
  { name: 'outcome', label: 'Outcome' },
  { name: 'connector', label: 'Connector' },
  { name: 'tool', label: 'Tool' },
  { name: 'decision', label: 'Decision' },
];

export function TopValues({ stats, onFilter }) {
  if (!stats) return html`<section class="top" aria-label="Top values" aria-busy="true"></section>`;
  return html`
    <section class="top" aria-labelledby="top-heading">
      <h2 id="top-heading" class="visually-hidden">Top values</h2>
      ${TOP_FIELDS.map((f) => {
        const values = (stats.top && stats.top[f.name]) || [];
        const max = values.reduce((m, v) => Math.max(m, v.count), 0);
        return html`
          <div class="top-field">
            <h3 id=${`top-${f.name}`}>${f.label}</h3>
            ${values.length === 0
              ? html`<p class="hint">None</p>`
              : html`<ul aria-labelledby=${`top-${f.name}`}>
                  ${values.slice(0, 5).map((v) => html`
                    <li>
                      <button type="button" class="top-value" title=${`Filter by ${f.label.toLowerCase()} ${v.value}`}
                        onClick=${() => onFilter(f.name, v.value)}>
                        <span class="visually-hidden">Filter by ${f.label.toLowerCase()}: </span>
                        <span class="top-name">${v.value}</span>
                        <span class="top-count">${v.count.toLocaleString()}</span>
                        <span class="top-bar" style=${{ width: `${max ? (v.count / max) * 100 : 0}%` }}></span>
                      </button>
                    </li>`)}
                </ul>`}
          </div>`;
      })}
    </section>`;
}
