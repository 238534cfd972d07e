// The console's entry point: the page shell (navigation, preferences, the
// signed-in person), the routes, and the guard that sends people who are
// not signed in to /login. docs/CONSOLE.md says how to add a page.
import { render } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { html } from './lib/html.js';
import { Link, match, navigate, useLocation } from './lib/router.js';
import { can, loadSession, session, setSession, signOut, who } from './lib/session.js';
import { onSessionEnded } from './lib/api.js';
import { setTheme, setTimeZone, theme, timeZone } from './lib/prefs.js';
import { localZoneName } from './lib/time.js';
import { EventsPage } from './pages/events.js';
import { LogPage } from './pages/log.js';
import { LinkPage, LoginPage } from './pages/login.js';
import { SettingsPage } from './pages/settings.js';
import { PeoplePage } from './pages/people.js';
import { ErasurePage } from './pages/erasure.js';
import { HoldsPage } from './pages/holds.js';
import { ForwardingPage } from './pages/forwarding.js';

// routes are the console's pages, most specific first. nav puts a page in
// the main navigation; scope hides it from people whose role lacks that
// scope (the server refuses them anyway); public pages need no session.
// A page added here is added to web.Pages (web/web.go) too.
export const routes = [
  { path: '/events/:id', page: EventsPage, title: 'Event', scope: 'auditlogs:read' },
  { path: '/events', page: EventsPage, title: 'Audit logs', nav: 'Audit logs', scope: 'auditlogs:read' },
  { path: '/log', page: LogPage, title: 'Log integrity', nav: 'Log integrity', scope: 'auditlogs:read' },
  { path: '/settings', page: SettingsPage, title: 'Settings', nav: 'Settings', scope: 'admin' },
  { path: '/people', page: PeoplePage, title: 'People and access', nav: 'People', scope: 'admin' },
  { path: '/erasure', page: ErasurePage, title: 'Erasure', nav: 'Erasure', scope: 'admin' },
  { path: '/holds', page: HoldsPage, title: 'Legal holds', nav: 'Legal holds', scope: 'admin' },
  { path: '/forwarding', page: ForwardingPage, title: 'Forwarding and exports', nav: 'Forwarding', scope: 'admin' },
  { path: '/login/link', page: LinkPage, title: 'Finish signing in', public: true },
  { path: '/login', page: LoginPage, title: 'Sign in', public: true },
];

function resolve(path) {
  for (const r of routes) {
    const params = match(r.path, path);
    if (params) return { route: r, params };
  }
  return null;
}

function Preferences() {
  const tz = timeZone.use();
  const th = theme.use();
  return html`
    <div class="prefs">
      <label>
        <span class="visually-hidden">Time zone</span>
        <select value=${tz} onChange=${(e) => setTimeZone(e.currentTarget.value)}>
          <option value="utc">UTC</option>
          <option value="local">Local time (${localZoneName()})</option>
        </select>
      </label>
      <label class="theme">
        <span class="visually-hidden">Theme</span>
        <select value=${th} onChange=${(e) => setTheme(e.currentTarget.value)}>
          <option value="system">System theme</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
      </label>
    </div>`;
}

function Shell({ route, children }) {
  const s = session.use();
  const loc = useLocation();
  const nav = routes.filter((r) => r.nav && (!r.scope || can(s, r.scope)));
  return html`
    <a class="skip-link" href="#main">Skip to main content</a>
    <header class="topbar">
      <${Link} class="brand" href="/events">Veritrail<//>
      ${s && html`
        <nav aria-label="Main">
          <ul>
            ${nav.map((r) => html`
              <li><${Link} href=${r.path} aria-current=${loc.path === r.path || (route && route.nav === r.nav) ? 'page' : undefined}>${r.nav}<//></li>`)}
          </ul>
        </nav>`}
      <${Preferences} />
      ${s && html`
        <div class="whoami">
          <span><span class="visually-hidden">Signed in as </span>${who(s)} <span class="role">${s.role}</span> <span class="org">${s.organization.name}</span></span>
          <button type="button" class="ghost" onClick=${() => signOut().then(() => navigate('/login'))}>Sign out</button>
        </div>`}
    </header>
    <main id="main" tabindex="-1">${children}</main>`;
}

function App() {
  const loc = useLocation();
  const s = session.use();
  const found = resolve(loc.path);
  const mainPath = useRef(null);

  useEffect(() => {
    if (s === undefined) loadSession().catch(() => setSession(null));
  }, []);

  // A new page (not a new view of the same page) gets a title, and focus
  // moves to its content, so screen readers start there.
  const routePath = found ? found.route.path : '';
  useEffect(() => {
    document.title = found ? `${found.route.title} · Veritrail` : 'Not found · Veritrail';
    if (mainPath.current !== null && mainPath.current !== routePath && !(routePath.startsWith('/events') && mainPath.current.startsWith('/events'))) {
      const main = document.getElementById('main');
      if (main) main.focus({ preventScroll: true });
    }
    mainPath.current = routePath;
  }, [routePath]);

  if (!found) {
    return html`<${Shell}><h1>Not found</h1><p>There is no page at ${loc.path}. <${Link} href="/events">Go to the audit logs<//>.</p><//>`;
  }
  const { route, params } = found;
  if (!route.public) {
    if (s === undefined) return html`<${Shell} route=${route}><p class="loading" role="status">Loading…</p><//>`;
    if (s === null) {
      const next = loc.path + loc.search;
      navigate(`/login?next=${encodeURIComponent(next)}`, { replace: true });
      return null;
    }
    if (route.scope && !can(s, route.scope)) {
      return html`<${Shell} route=${route}><h1>${route.title}</h1><p>Your role (${s.role}) cannot see this page.</p><//>`;
    }
  }
  const Page = route.page;
  return html`<${Shell} route=${route}><${Page} params=${params} loc=${loc} /><//>`;
}

onSessionEnded(() => setSession(null));
render(html`<${App} />`, document.getElementById('app'));
