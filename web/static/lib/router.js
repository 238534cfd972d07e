// Addresses are the state: every page and every view of the audit log is a
// URL (docs/CONSOLE.md, "Automation contract"). The router keeps the
// browser's history and tells components when the address changes.
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';

const listeners = new Set();

function current() {
  return { path: location.pathname, search: location.search, hash: location.hash };
}

function notify() {
  const loc = current();
  for (const fn of listeners) fn(loc);
}

addEventListener('popstate', notify);

// navigate goes to an address of the console without reloading the page;
// replace keeps the history entry (typing in a filter, zooming).
export function navigate(to, { replace = false } = {}) {
  if (to === location.pathname + location.search + location.hash) return;
  history[replace ? 'replaceState' : 'pushState'](null, '', to);
  notify();
}

export function useLocation() {
  const [loc, setLoc] = useState(current);
  useEffect(() => {
    listeners.add(setLoc);
    return () => listeners.delete(setLoc);
  }, []);
  return loc;
}

// match returns the parameters of path under pattern ('/events/:id'), or null.
export function match(pattern, path) {
  const want = pattern.split('/');
  const got = path.split('/');
  if (want.length !== got.length) return null;
  const params = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(':')) {
      if (!got[i]) return null;
      params[want[i].slice(1)] = decodeURIComponent(got[i]);
    } else if (want[i] !== got[i]) {
      return null;
    }
  }
  return params;
}

// Link is an <a href> that navigates in place on a plain click; other clicks
// (new tab, download) are the browser's.
export function Link(props) {
  const onClick = (e) => {
    if (props.onClick) props.onClick(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.href, { replace: !!props.replace });
  };
  const rest = { ...props, onClick };
  delete rest.replace;
  return h('a', rest);
}
