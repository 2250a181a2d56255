// Purser's web console: one page, hash routes, vanilla ES2020, no build step.
//
// It calls the same JSON API as the CLI, on the same origin. On `purser up`
// (config auth "local") a picker chooses whom to act as, sent as
// X-Purser-Principal; on AWS (auth "oidc") the page signs in by the
// authorization code flow with PKCE and sends the ID token as a bearer.
// Everything shown is built with DOM calls (never HTML strings), so nothing
// an API answer holds is ever parsed as markup; the page runs under a CSP
// without inline scripts or styles.
'use strict';

(() => {
  const POLL_MS = 2000;
  const KEY_PRINCIPAL = 'purser.principal';
  const LOCAL_ADMIN = ''; // the picker's value for "local admin": no header
  const STATES_CLOSABLE = new Set(['requested', 'ready', 'frozen']);
  const STATES_EXTENDABLE = new Set(['ready', 'frozen']);
  const STATE_LABELS = { pending_approval: 'waiting for approval' };
  const SOURCES = {
    stream: 'streamed within seconds',
    athena: 'settled by the lake',
    lake: 'settled by the lake',
    cur: 'the bill (CUR)',
  };

  const CONFIG = readConfig();

  function readConfig() {
    const el = document.getElementById('purser-config');
    if (!el) return { auth: 'local' };
    try {
      const config = JSON.parse(el.textContent);
      return config && typeof config === 'object' ? config : { auth: 'local' };
    } catch (e) {
      return { auth: 'broken', error: String(e) };
    }
  }

  // ---------------------------------------------------------------- DOM

  const SVG_NS = 'http://www.w3.org/2000/svg';

  function setProps(el, props) {
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.setAttribute('class', value);
      else if (key === 'text') el.textContent = String(value);
      else if (key === 'testid') el.setAttribute('data-testid', value);
      else if (key.startsWith('on') && typeof value === 'function') {
        el.addEventListener(key.slice(2), value);
      } else if (key === 'value' && 'value' in el && el.namespaceURI !== SVG_NS) {
        el.value = String(value);
      } else if (key === 'checked' || key === 'selected') el[key] = Boolean(value);
      else if (value === true) el.setAttribute(key, '');
      else el.setAttribute(key, String(value));
    }
  }

  function add(el, kids) {
    for (const kid of kids.flat(Infinity)) {
      if (kid === undefined || kid === null || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  /** An HTML element: h('a', {href: '#/x'}, 'text', child). */
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    setProps(el, props);
    return add(el, kids);
  }

  /** An SVG element. */
  function s(tag, props, ...kids) {
    const el = document.createElementNS(SVG_NS, tag);
    setProps(el, props);
    return add(el, kids);
  }

  function replace(el, ...kids) {
    el.replaceChildren();
    return add(el, kids);
  }

  /** Only http(s) links are made into links: never javascript: or data:. */
  function safeUrl(url) {
    try {
      const u = new URL(url, location.href);
      return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
    if ('hidden' in el && el.id === 'alert') el.hidden = !text;
  }

  // ---------------------------------------------------------- formatting

  function money(amount, currency) {
    const n = Number(amount);
    if (amount === null || amount === undefined || amount === '' || !Number.isFinite(n)) return '—';
    const abs = Math.abs(n);
    const max = abs > 0 && abs < 1 ? 4 : 2;
    try {
      return new Intl.NumberFormat(undefined, {
        style: 'currency',
        currency: currency || 'USD',
        minimumFractionDigits: 2,
        maximumFractionDigits: max,
      }).format(n);
    } catch (e) {
      return `${n.toFixed(max)} ${currency || ''}`.trim();
    }
  }

  function percent(part, whole) {
    const p = Number(part);
    const w = Number(whole);
    if (!Number.isFinite(p) || !Number.isFinite(w) || w <= 0) return null;
    return (p / w) * 100;
  }

  function fmtPercent(value) {
    if (value === null) return '';
    return `${value >= 10 ? Math.round(value) : value.toFixed(1)} %`;
  }

  function date(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  function fmtDate(iso) {
    const d = date(iso);
    return d ? d.toLocaleDateString(undefined, { dateStyle: 'medium' }) : '—';
  }

  function fmtDateTime(iso, seconds) {
    const d = date(iso);
    return d
      ? d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: seconds ? 'medium' : 'short' })
      : '—';
  }

  function timeEl(iso, text) {
    return h('time', { datetime: iso || '' }, text);
  }

  function relative(iso) {
    const d = date(iso);
    if (!d) return '';
    const ms = d.getTime() - Date.now();
    const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
    const abs = Math.abs(ms);
    if (abs >= 86400000) return rtf.format(Math.round(ms / 86400000), 'day');
    if (abs >= 3600000) return rtf.format(Math.round(ms / 3600000), 'hour');
    return rtf.format(Math.round(ms / 60000), 'minute');
  }

  function badge(state, label) {
    return h('span', { class: `badge ${state}`, testid: 'state', 'data-state': state }, label || STATE_LABELS[state] || state);
  }

  function monthName(period) {
    const m = /^(\d{4})-(\d{2})$/.exec(period || '');
    if (!m) return period || '';
    const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1));
    return d.toLocaleDateString(undefined, { month: 'long', year: 'numeric', timeZone: 'UTC' });
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const x = Array.from(b, (v) => v.toString(16).padStart(2, '0')).join('');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  }

  // -------------------------------------------------------------- sign-in

  const oidc = {
    TOKEN: 'purser.oidc.id_token',
    PENDING: 'purser.oidc.pending',
    STARTS: 'purser.oidc.starts',

    redirectUri() {
      return `${location.origin}/`;
    },

    claims(token) {
      try {
        const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
        const json = decodeURIComponent(
          Array.from(atob(part), (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''),
        );
        return JSON.parse(json);
      } catch (e) {
        return null;
      }
    },

    token() {
      const token = sessionStorage.getItem(this.TOKEN);
      if (!token) return null;
      const claims = this.claims(token);
      if (!claims || (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now() + 30000)) {
        sessionStorage.removeItem(this.TOKEN);
        return null;
      }
      return token;
    },

    b64url(bytes) {
      let text = '';
      for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
      return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    },

    random(n) {
      return this.b64url(crypto.getRandomValues(new Uint8Array(n)));
    },

    /** Sends the browser to the identity provider. Refuses to loop: three
     * starts within two minutes mean the provider or the API keeps refusing. */
    async start() {
      const now = Date.now();
      const starts = JSON.parse(sessionStorage.getItem(this.STARTS) || '[]').filter((t) => now - t < 120000);
      if (starts.length >= 3) {
        sessionStorage.removeItem(this.STARTS);
        throw new Error('Signing in did not succeed after three tries. Sign in again, or ask a platform admin to check the console\'s identity provider.');
      }
      starts.push(now);
      sessionStorage.setItem(this.STARTS, JSON.stringify(starts));
      const verifier = this.random(32);
      const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
      const pending = { verifier, state: this.random(16), nonce: this.random(16), hash: location.hash };
      sessionStorage.setItem(this.PENDING, JSON.stringify(pending));
      const url = new URL(CONFIG.authorize_url);
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('client_id', CONFIG.client_id);
      url.searchParams.set('redirect_uri', this.redirectUri());
      url.searchParams.set('scope', CONFIG.scope || 'openid email');
      url.searchParams.set('state', pending.state);
      url.searchParams.set('nonce', pending.nonce);
      url.searchParams.set('code_challenge', this.b64url(digest));
      url.searchParams.set('code_challenge_method', 'S256');
      location.assign(url.href);
      return new Promise(() => {}); // the page is leaving
    },

    /** Back from the provider with ?code= (or ?error=): exchanges the code
     * for tokens. False when this load is no such answer. */
    async callback() {
      const query = new URLSearchParams(location.search);
      if (!query.has('code') && !query.has('error')) return false;
      const pending = JSON.parse(sessionStorage.getItem(this.PENDING) || 'null');
      sessionStorage.removeItem(this.PENDING);
      history.replaceState(null, '', `${location.pathname}${(pending && pending.hash) || '#/accounts'}`);
      if (query.has('error')) {
        throw new Error(`The identity provider refused the sign-in: ${query.get('error_description') || query.get('error')}`);
      }
      if (!pending || query.get('state') !== pending.state) {
        throw new Error('This sign-in answer is not for a sign-in this tab started. Sign in again.');
      }
      let reply;
      try {
        reply = await fetch(CONFIG.token_url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'authorization_code',
            code: query.get('code'),
            redirect_uri: this.redirectUri(),
            client_id: CONFIG.client_id,
            code_verifier: pending.verifier,
          }),
        });
      } catch (e) {
        throw new Error(`The identity provider's token endpoint does not answer: ${e.message}`);
      }
      const body = await reply.json().catch(() => ({}));
      if (!reply.ok || typeof body.id_token !== 'string') {
        throw new Error(`The identity provider did not give a token: ${body.error_description || body.error || reply.status}`);
      }
      const claims = this.claims(body.id_token);
      if (!claims || (claims.nonce !== undefined && claims.nonce !== pending.nonce)) {
        throw new Error('The identity provider\'s token is not for this sign-in. Sign in again.');
      }
      sessionStorage.setItem(this.TOKEN, body.id_token);
      return true;
    },

    signOut() {
      sessionStorage.removeItem(this.TOKEN);
      sessionStorage.removeItem(this.STARTS);
      const url = CONFIG.logout_url ? safeUrl(CONFIG.logout_url) : null;
      if (url) location.assign(url);
      else showSignIn('You are signed out of the console (your identity provider may still know you).');
    },
  };

  // ----------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message, field) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field || null;
    }
  }

  function principal() {
    return localStorage.getItem(KEY_PRINCIPAL) || LOCAL_ADMIN;
  }

  /** Calls the API. `asAdmin`: locally, without X-Purser-Principal (the
   * platform admin), to list everyone the picker offers. */
  async function api(method, path, { body, headers, asAdmin } = {}) {
    const all = { Accept: 'application/json', ...(headers || {}) };
    if (body !== undefined) all['Content-Type'] = 'application/json';
    if (CONFIG.auth === 'local') {
      const who = principal();
      if (!asAdmin && who !== LOCAL_ADMIN) all['X-Purser-Principal'] = who;
    } else if (CONFIG.auth === 'oidc') {
      const token = oidc.token();
      if (!token) {
        await signInAgain();
      }
      all.Authorization = `Bearer ${token}`;
    }
    let reply;
    try {
      reply = await fetch(path, {
        method,
        headers: all,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'same-origin',
      });
    } catch (e) {
      throw new ApiError(0, 'unreachable', `Purser does not answer (${e.message}); trying again.`, null);
    }
    const text = await reply.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = null;
      }
    }
    if (reply.status === 401 && CONFIG.auth === 'oidc') {
      sessionStorage.removeItem(oidc.TOKEN);
      await signInAgain();
    }
    if (!reply.ok) {
      const error = (data && data.error) || {};
      const message = error.message || (data && data.message) || `${reply.status} ${reply.statusText}`;
      throw new ApiError(reply.status, error.code || `http_${reply.status}`, message, error.field);
    }
    return data;
  }

  async function signInAgain() {
    try {
      await oidc.start();
    } catch (e) {
      showSignIn(e.message);
      throw new ApiError(401, 'unauthorized', e.message, null);
    }
  }

  function path(...parts) {
    return `/${parts.map((p) => encodeURIComponent(p)).join('/')}`;
  }

  /** Every page of GET /accounts?team=. */
  async function listAccounts(team) {
    const items = [];
    let next = null;
    for (let i = 0; i < 20; i += 1) {
      const query = new URLSearchParams();
      if (team) query.set('team', team);
      if (next) query.set('next', next);
      const q = query.toString();
      const page = await api('GET', `/accounts${q ? `?${q}` : ''}`);
      items.push(...((page && page.items) || []));
      next = page && page.next;
      if (!next) break;
    }
    return items;
  }

  // --------------------------------------------------------------- state

  /** What every page shares, refreshed on every tick. */
  const state = {
    me: null, // GET /me
    teams: null, // GET /teams
    accounts: [], // accounts of my teams
    error: null, // why the last refresh failed
    members: [], // whom the local picker offers
    approvals: [], // GET /approvals: what waits for me to decide
  };

  async function refreshShared() {
    try {
      const me = await api('GET', '/me');
      const [teams, accounts, approvals] = await Promise.all([
        api('GET', '/teams'),
        me.admin
          ? listAccounts(null)
          : Promise.all((me.teams || []).map((t) => listAccounts(t))).then((lists) => lists.flat()),
        api('GET', '/approvals').then((a) => (Array.isArray(a) ? a : (a && a.items) || []), () => []),
      ]);
      state.me = me;
      state.teams = teams;
      state.accounts = accounts;
      state.approvals = approvals;
      state.error = null;
      if (CONFIG.auth === 'local') {
        const everyone = principal() === LOCAL_ADMIN ? teams : await api('GET', '/teams', { asAdmin: true });
        const members = new Set();
        for (const t of (everyone && everyone.items) || []) for (const m of t.members || []) members.add(m);
        state.members = Array.from(members).sort();
      }
    } catch (e) {
      state.error = e;
    }
  }

  // ------------------------------------------------------------ chrome

  const els = {};

  function renderWho() {
    const who = els.who;
    if (CONFIG.auth === 'local') {
      if (!els.picker) {
        els.picker = h('select', { id: 'principal', testid: 'principal-picker', onchange: onPick });
        replace(
          who,
          h('label', { for: 'principal' }, 'Act as'),
          els.picker,
          h('span', { class: 'hint visually-hidden' }, 'purser up: no sign-in, choose whom the page acts as'),
        );
      }
      const current = principal();
      const values = [LOCAL_ADMIN, ...state.members];
      if (!values.includes(current)) values.push(current);
      const key = JSON.stringify(values);
      // Not while the list is open or focused: that would close it under the user.
      if (els.picker.dataset.key !== key && document.activeElement !== els.picker) {
        els.picker.dataset.key = key;
        replace(
          els.picker,
          values.map((v) => h('option', { value: v, selected: v === current }, v === LOCAL_ADMIN ? 'local admin' : v)),
        );
      }
      els.picker.value = current;
    } else if (CONFIG.auth === 'oidc') {
      const name = state.me ? state.me.principal : '';
      if (els.who.dataset.name !== name) {
        els.who.dataset.name = name;
        replace(
          who,
          name ? h('span', { testid: 'signed-in-as' }, `Signed in as ${name}`) : null,
          h('button', { type: 'button', class: 'secondary small', testid: 'sign-out', onclick: () => oidc.signOut() }, 'Sign out'),
        );
      }
    }
  }

  function onPick() {
    localStorage.setItem(KEY_PRINCIPAL, els.picker.value);
    state.me = null;
    state.teams = null;
    state.accounts = [];
    state.error = null;
    route(true);
  }

  function renderNav() {
    const me = state.me;
    els.navAdminItem.hidden = !(me && me.admin);
    els.navApprovalsItem.hidden = !mayApprove();
    const waiting = state.approvals.length;
    setText(els.navApprovalsCount, waiting > 0 ? ` (${waiting})` : '');
    const teams = (me && me.teams) || [];
    els.navTeamsItem.hidden = teams.length === 0;
    const key = JSON.stringify(teams);
    if (els.navTeams.dataset.key !== key) {
      els.navTeams.dataset.key = key;
      replace(
        els.navTeams,
        teams.map((t) => h('a', { href: `#/teams/${encodeURIComponent(t)}`, testid: `nav-team-${t}` }, t)),
      );
    }
    const here = location.hash || '#/accounts';
    for (const a of document.querySelectorAll('#nav a')) {
      const target = a.getAttribute('href');
      const current = target === here || (target === '#/accounts' && here.startsWith('#/accounts/'));
      if (current) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  /** Approvals is in the nav for admins, the teams' approvers, and whoever
   * GET /approvals gives anything to decide. */
  function mayApprove() {
    const me = state.me;
    if (!me) return false;
    if (me.admin || state.approvals.length > 0) return true;
    return ((state.teams && state.teams.items) || []).some((t) => (t.approvers || []).includes(me.principal));
  }

  function renderAlert() {
    const e = state.error;
    setText(els.alert, e ? e.message : '');
  }

  /** The frozen (and throttled) banners, from what the data says. */
  function banners() {
    const out = [];
    const byTeam = new Map();
    for (const t of (state.teams && state.teams.items) || []) byTeam.set(t.team, t);
    const frozenByTeam = new Map();
    const held = [];
    for (const a of state.accounts) {
      if (a.state !== 'frozen') continue;
      // The runaway guard's freeze holds until an admin releases it: a
      // raised budget does not lift it, so it has a banner of its own.
      if ((a.frozen_by || []).includes('runaway')) {
        held.push(a);
        continue;
      }
      if (!frozenByTeam.has(a.team)) frozenByTeam.set(a.team, []);
      frozenByTeam.get(a.team).push(a);
    }
    for (const a of held) {
      out.push({
        kind: 'frozen',
        team: a.team,
        text: `Account ${a.account_id || a.id} of team ${a.team} is frozen by the runaway guard: its spend in an hour went over a runaway rule. It stays frozen until a platform admin releases it after a look (purser accounts release ${a.id}).`,
      });
    }
    const names = new Set([...frozenByTeam.keys(), ...byTeam.keys()]);
    for (const team of Array.from(names).sort()) {
      const t = byTeam.get(team);
      const b = t && t.budget;
      const frozen = frozenByTeam.get(team) || [];
      const why = budgetWhy(team, b);
      if (frozen.length > 0 || (b && b.frozen)) {
        const ids = frozen.map((a) => a.account_id || a.id);
        const subject = ids.length === 0
          ? `The accounts of team ${team} are frozen`
          : ids.length === 1
            ? `Account ${ids[0]} of team ${team} is frozen`
            : `Accounts ${ids.join(', ')} of team ${team} are frozen`;
        out.push({ kind: 'frozen', team, text: why ? `${subject}: ${why}. An admin can raise the budget.` : `${subject}.` });
      }
      if (throttledCount(b) > 0) {
        const n = throttledCount(b);
        const subject = `${n} Lambda function${n === 1 ? '' : 's'} of team ${team} ${n === 1 ? 'is' : 'are'} throttled`;
        out.push({ kind: 'throttled', team, text: why ? `${subject}: ${why}. An admin can raise the budget.` : `${subject}.` });
      }
    }
    return out;
  }

  /** How many functions a budget throttles: a count, or a list of them. */
  function throttledCount(b) {
    if (!b) return 0;
    if (Array.isArray(b.throttled)) return b.throttled.length;
    const n = Number(b.throttled);
    return Number.isFinite(n) && n > 0 ? n : 0;
  }

  function budgetWhy(team, b) {
    if (!b) return null;
    const crossed = (b.crossed_thresholds || []).map(Number).filter(Number.isFinite);
    if (crossed.length === 0) return null;
    const top = Math.max(...crossed);
    return `team ${team} crossed ${top}% of its budget (${money(b.spend, b.currency)} of ${money(b.amount, b.currency)})`;
  }

  function renderBanners() {
    const list = banners();
    const key = JSON.stringify(list);
    if (els.banners.dataset.key === key) return;
    els.banners.dataset.key = key;
    replace(
      els.banners,
      list.map((b) => h(
        'div',
        { class: `banner ${b.kind}`, testid: `${b.kind}-banner`, 'data-team': b.team },
        h('strong', {}, b.kind === 'frozen' ? 'Frozen. ' : 'Throttled. '),
        b.text,
        ' ',
        h('a', { href: `#/teams/${encodeURIComponent(b.team)}` }, `See the spend of team ${b.team}`),
      )),
    );
  }

  function renderChrome() {
    renderWho();
    renderNav();
    renderAlert();
    renderBanners();
  }

  function showSignIn(message) {
    halted = true; // no more polling: it would only start signing in again
    clearTimeout(timer);
    page = null;
    replace(
      els.main,
      h('h1', { tabindex: '-1' }, 'Sign in'),
      h('p', { class: 'page-error', role: 'alert', testid: 'page-error' }, message),
      h('button', {
        type: 'button',
        onclick: () => {
          sessionStorage.removeItem(oidc.STARTS);
          oidc.start().catch((e) => showSignIn(e.message));
        },
      }, 'Sign in'),
    );
  }

  // --------------------------------------------------------- confirming

  function confirmDialog(question, yes) {
    return new Promise((resolve) => {
      const dialog = h('dialog', { testid: 'confirm-dialog', 'aria-labelledby': 'confirm-text' });
      const done = (answer) => {
        dialog.close();
        dialog.remove();
        resolve(answer);
      };
      add(
        dialog,
        h('p', { id: 'confirm-text' }, question),
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'danger solid', testid: 'confirm-yes', onclick: () => done(true) }, yes),
          h('button', { type: 'button', class: 'secondary', testid: 'confirm-no', onclick: () => done(false) }, 'Cancel')),
      );
      dialog.addEventListener('cancel', (e) => {
        e.preventDefault();
        done(false);
      });
      document.body.append(dialog);
      dialog.showModal();
    });
  }

  // -------------------------------------------------------------- forms

  /** A labelled control with its error slot. */
  function field(form, name, label, control, hint) {
    const id = `${form}-${name}`;
    control.id = id;
    control.name = name;
    const error = h('p', { class: 'field-error', id: `${id}-error`, testid: `error-${name}` });
    const described = [`${id}-error`];
    let hintEl = null;
    if (hint) {
      hintEl = h('p', { class: 'hint', id: `${id}-hint` }, hint);
      described.push(`${id}-hint`);
    }
    control.setAttribute('aria-describedby', described.join(' '));
    return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl, error);
  }

  function clearErrors(form) {
    for (const el of form.querySelectorAll('.field-error, .form-error')) el.textContent = '';
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  }

  /** Shows an API error by the field it names (`amount`, `members`, …),
   * else under the form. `aliases` maps the API's field to a control's name. */
  function showError(form, error, aliases) {
    const name = (aliases && aliases[error.field]) || error.field;
    const control = name ? form.elements.namedItem(name) : null;
    if (control && control.id) {
      const slot = document.getElementById(`${control.id}-error`);
      if (slot) {
        slot.textContent = error.message;
        control.setAttribute('aria-invalid', 'true');
        control.focus();
        return;
      }
    }
    const slot = form.querySelector('.form-error');
    slot.textContent = error.message;
  }

  // ---------------------------------------------------------------- pages

  let page = null; // the page shown: {refresh(alive)}
  let generation = 0;

  function heading(text, testid) {
    return h('h1', { tabindex: '-1', testid }, text);
  }

  function pageError(el, error) {
    if (!error) {
      el.textContent = '';
      el.hidden = true;
      return;
    }
    el.hidden = false;
    setText(el, error.message);
  }

  function signatureOf(value) {
    return JSON.stringify(value);
  }

  // My accounts: the request form and the accounts of my teams.
  function accountsPage(main) {
    let requestKey = null;
    let lastSig = null;
    let showClosed = false;

    const teamSelect = h('select', { required: true });
    const owner = h('input', { type: 'email', autocomplete: 'email', inputmode: 'email', required: true });
    const purpose = h('input', { type: 'text', maxlength: '200', required: true });
    const lease = h('input', { type: 'number', inputmode: 'numeric', min: '1', max: '365', step: '1', value: '30' });
    const templateSelect = h('select', {});
    const templateInfo = h('div', { class: 'template-info', testid: 'template-info', 'aria-live': 'polite' });
    const templateField = field('request', 'template', 'Lease template', templateSelect);
    templateField.append(templateInfo);
    templateField.hidden = true;
    const leaseField = field('request', 'lease_days', 'Lease (days)', lease, 'Closed after this many days; 1 to 365.');
    const leaseHint = leaseField.querySelector('.hint');
    let templates = []; // GET /templates
    let templateTeam = null; // the team the template choice was made for
    const submit = h('button', { type: 'submit', testid: 'request-submit' }, 'Request account');
    const status = h('p', { class: 'form-status', role: 'status', testid: 'request-status' });
    const form = h('form', { testid: 'request-form', novalidate: true, 'aria-labelledby': 'request-heading' },
      h('div', { class: 'fields' },
        field('request', 'team', 'Team', teamSelect),
        field('request', 'owner', 'Owner (email)', owner, 'Who signs in to the account.'),
        field('request', 'purpose', 'Purpose', purpose),
        templateField,
        leaseField),
      h('p', { class: 'form-error', role: 'alert', testid: 'request-error' }),
      h('div', { class: 'actions' }, submit),
      status);
    const noTeams = h('p', { class: 'muted', testid: 'no-teams', hidden: true },
      'You are not a member of any team yet, so you cannot request an account. A platform admin adds you to a team.');
    const tableBox = h('div', { class: 'table-wrap', testid: 'accounts' });
    const closedToggle = h('input', {
      type: 'checkbox',
      id: 'show-closed',
      onchange: () => {
        showClosed = closedToggle.checked;
        lastSig = null;
        draw();
      },
    });

    form.addEventListener('input', () => {
      requestKey = null; // a changed request is a new request
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      status.textContent = '';
      const body = { team: teamSelect.value, owner: owner.value.trim(), purpose: purpose.value.trim() };
      const days = lease.value.trim();
      if (days !== '') body.lease_days = /^\d+$/.test(days) ? Number(days) : days;
      if (!templateField.hidden && templateSelect.value) body.template = templateSelect.value;
      requestKey = requestKey || uuid();
      submit.disabled = true;
      try {
        const account = await api('POST', '/accounts', { body, headers: { 'Idempotency-Key': requestKey } });
        requestKey = null;
        purpose.value = '';
        status.textContent = account.state === 'pending_approval'
          ? `Account ${account.id} requested for team ${account.team}; it is waiting for approval: a team approver or a platform admin decides, and it is made once approved.`
          : `Account ${account.id} requested for team ${account.team}; it is ${account.state}. It will be ready within seconds here, or a few minutes on AWS.`;
        tick();
      } catch (error) {
        showError(form, error);
      } finally {
        submit.disabled = false;
      }
    });

    replace(main,
      heading('My accounts', 'page-title'),
      h('section', { class: 'panel', 'aria-labelledby': 'request-heading' },
        h('h2', { id: 'request-heading' }, 'Request an account'),
        noTeams,
        form),
      h('section', { 'aria-labelledby': 'accounts-heading' },
        h('h2', { id: 'accounts-heading' }, 'Accounts of my teams'),
        h('p', {}, h('label', { class: 'check', for: 'show-closed' }, closedToggle, 'Show closed accounts')),
        tableBox));

    templateSelect.addEventListener('change', () => {
      const t = templates.find((x) => x.name === templateSelect.value);
      lease.value = String(t ? t.default_lease_days : 30);
      showTemplate();
    });
    teamSelect.addEventListener('change', () => syncTemplates());

    /** The templates the chosen team may use: no teams named, or it among them. */
    function usable(team) {
      return templates.filter((t) => !Array.isArray(t.teams) || t.teams.length === 0 || t.teams.includes(team));
    }

    function teamOf(name) {
      return ((state.teams && state.teams.items) || []).find((t) => t.team === name) || null;
    }

    function syncTemplates() {
      const team = teamSelect.value;
      const list = usable(team);
      templateField.hidden = list.length === 0;
      const settings = teamOf(team);
      const fallback = settings && settings.default_template;
      const hasFallback = !!fallback && list.some((t) => t.name === fallback);
      const options = [
        ...(hasFallback ? [] : [{ value: '', label: 'No template' }]),
        ...list.map((t) => ({ value: t.name, label: t.name === fallback ? `${t.name} (the team's default)` : t.name })),
      ];
      const key = JSON.stringify([team, options]);
      if (templateSelect.dataset.key !== key) {
        templateSelect.dataset.key = key;
        const fresh = templateTeam !== team; // a new team: its default again
        const was = fresh ? (hasFallback ? fallback : '') : templateSelect.value;
        templateTeam = team;
        replace(templateSelect, options.map((o) => h('option', { value: o.value, selected: o.value === was }, o.label)));
        templateSelect.value = options.some((o) => o.value === was) ? was : options[0] ? options[0].value : '';
        if (fresh && list.length > 0) {
          const t = list.find((x) => x.name === templateSelect.value);
          if (t) lease.value = String(t.default_lease_days);
        }
      }
      showTemplate();
    }

    function showTemplate() {
      const t = templateField.hidden ? null : templates.find((x) => x.name === templateSelect.value);
      const max = t ? (t.max_lease_days || t.default_lease_days) : 365;
      lease.max = String(max);
      setText(leaseHint, t
        ? `Closed after this many days; template ${t.name} gives ${t.default_lease_days} by default, at most ${max}.`
        : 'Closed after this many days; 1 to 365.');
      const sig = JSON.stringify(t || null);
      if (templateInfo.dataset.key === sig) return;
      templateInfo.dataset.key = sig;
      if (!t) {
        replace(templateInfo, templateField.hidden ? null : h('p', { class: 'hint' }, 'No template: the lease you give (30 days unless you say), no approval.'));
        return;
      }
      replace(templateInfo,
        h('p', { class: 'hint', testid: 'template-description' }, t.description),
        h('p', { class: 'hint', testid: 'template-lease' }, `Lease ${t.default_lease_days} day${t.default_lease_days === 1 ? '' : 's'} by default, at most ${max}. Version ${t.version}.`),
        t.budget ? h('p', { class: 'hint' }, `Each account's budget: ${money(t.budget.amount, t.budget.currency)} over its lease.`) : null,
        h('p', { class: `hint approval ${approvalKind(t.approval)}`, testid: 'template-approval' }, describeApproval(t.approval)));
    }

    let ownerTouched = false;
    owner.addEventListener('input', () => {
      ownerTouched = true;
    });

    function syncForm() {
      const me = state.me;
      const teams = (me && me.teams) || [];
      noTeams.hidden = !me || teams.length > 0;
      form.hidden = !!me && teams.length === 0;
      const key = JSON.stringify(teams);
      if (teamSelect.dataset.key !== key) {
        const was = teamSelect.value;
        teamSelect.dataset.key = key;
        replace(teamSelect, teams.map((t) => h('option', { value: t, selected: t === was }, t)));
      }
      syncTemplates();
      if (!ownerTouched && me && !owner.value && /@/.test(me.principal || '') && !/^arn:/.test(me.principal)) {
        owner.value = me.principal;
      }
    }

    function row(a) {
      const access = a.access || null;
      const link = access && access.link ? safeUrl(access.link) : null;
      let signIn;
      if (link && a.state !== 'closed' && a.state !== 'closing') {
        signIn = h('a', { href: link, target: '_blank', rel: 'noopener noreferrer', testid: 'signin-link' },
          'Sign in', h('span', { class: 'visually-hidden' }, ` to ${a.account_id || a.id}`));
        if (access.permission_set) signIn = [signIn, h('span', { class: 'sub' }, access.permission_set)];
      } else if (access && access.status && access.status !== 'not_configured') {
        signIn = h('span', { class: 'muted', title: access.reason || '' }, access.status.replace(/_/g, ' '));
      } else {
        signIn = h('span', { class: 'muted' }, '—');
      }
      const close = STATES_CLOSABLE.has(a.state)
        ? h('button', {
          type: 'button',
          class: 'danger small',
          testid: 'close-button',
          onclick: () => closeAccount(a),
        }, 'Close', h('span', { class: 'visually-hidden' }, ` ${a.id}`))
        : null;
      return h('tr', { testid: 'account-row', 'data-id': a.id, 'data-state': a.state, class: a.state === 'closed' ? 'closed' : '' },
        h('td', { 'data-label': 'Account' },
          h('a', { href: `#/accounts/${encodeURIComponent(a.id)}`, testid: 'account-link' }, a.id),
          h('span', { class: 'sub mono', testid: 'aws-account-id' }, a.account_id || 'no AWS account yet')),
        h('td', { 'data-label': 'State' }, badge(a.state)),
        h('td', { 'data-label': 'Team' }, a.team),
        h('td', { 'data-label': 'Purpose' }, a.purpose, h('span', { class: 'sub' }, a.owner)),
        h('td', { 'data-label': 'Lease ends' },
          a.lease_end
            ? [timeEl(a.lease_end, fmtDate(a.lease_end)), h('span', { class: 'sub' }, relative(a.lease_end))]
            : h('span', { class: 'muted' }, a.state === 'pending_approval' && a.lease_days ? `${a.lease_days} days once approved` : 'no lease end'),
          a.pending_extension ? h('span', { class: 'sub', testid: 'row-pending-extension' }, `+${a.pending_extension.days} days waits for approval`) : null),
        h('td', { 'data-label': 'Sign in' }, signIn),
        h('td', { 'data-label': 'Actions' }, close));
    }

    function draw() {
      const all = state.accounts.slice().sort((x, y) => String(y.created_at).localeCompare(String(x.created_at)));
      const shown = all.filter((a) => showClosed || a.state !== 'closed');
      // The minute changes "time left"; nothing else is redrawn unless it changed.
      if (!state.me) return;
      const sig = signatureOf([shown, Math.floor(Date.now() / 60000)]);
      if (sig === lastSig) return;
      lastSig = sig;
      if (shown.length === 0) {
        const closed = all.length - shown.length;
        replace(tableBox, h('p', { class: 'empty', testid: 'no-accounts' },
          closed > 0 ? `No open accounts (${closed} closed).` : 'No accounts yet. Request one above.'));
        return;
      }
      replace(tableBox, h('table', { class: 'cards', testid: 'accounts-table' },
        h('caption', { class: 'visually-hidden' }, 'Accounts of my teams, newest first'),
        h('thead', {}, h('tr', {},
          ['Account', 'State', 'Team', 'Purpose and owner', 'Lease ends', 'Sign in', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, shown.map(row))));
    }

    return {
      async refresh(alive) {
        try {
          const list = await api('GET', '/templates');
          if (!alive()) return;
          templates = Array.isArray(list) ? list : (list && list.items) || [];
        } catch (e) {
          templates = []; // the form works without templates
        }
        syncForm();
        draw();
      },
    };
  }

  function approvalKind(approval) {
    if (approval === 'always') return 'always';
    if (approval && typeof approval === 'object' && Array.isArray(approval.auto)) return 'auto';
    return 'never';
  }

  function describeRule(r) {
    switch (r.rule) {
      case 'lease_at_most': return `a lease of at most ${r.days} day${r.days === 1 ? '' : 's'}`;
      case 'team_under_quota': return 'the team under its quota';
      case 'no_frozen_account': return 'no frozen account in the team';
      case 'budget_at_most': return `a budget of at most ${money(r.amount)}`;
      default: return r.rule;
    }
  }

  function describeApproval(approval) {
    const kind = approvalKind(approval);
    if (kind === 'always') return 'Needs approval: a team approver or a platform admin decides each request.';
    if (kind === 'auto') return `Approved at once with ${approval.auto.map(describeRule).join(', ')}; otherwise an approver decides.`;
    return 'No approval needed.';
  }

  async function closeAccount(a) {
    const ok = await confirmDialog(
      `Close account ${a.account_id || a.id} (${a.purpose}) of team ${a.team}? AWS closes it; what runs in it stops.`,
      'Close account',
    );
    if (!ok) return;
    try {
      await api('DELETE', path('accounts', a.id));
      state.error = null;
    } catch (e) {
      state.error = e;
    }
    renderAlert();
    tick();
  }

  // One account, with its timeline.
  function accountPage(main, id) {
    const error = h('p', { class: 'page-error', role: 'alert', testid: 'page-error', hidden: true });
    const box = h('div', { testid: 'account-detail' });
    let lastSig = null;

    // Extending: kept out of the redrawn part so a poll never takes the input away.
    const days = h('input', { type: 'number', inputmode: 'numeric', min: '1', max: '90', step: '1', value: '7' });
    const extendStatus = h('p', { class: 'form-status', role: 'status', testid: 'extend-status' });
    const extendSubmit = h('button', { type: 'submit', testid: 'extend-submit' }, 'Extend lease');
    const extendForm = h('form', { testid: 'extend-form', novalidate: true, 'aria-labelledby': 'extend-heading' },
      h('div', { class: 'fields' },
        field('extend', 'days', 'Extend by (days)', days, '1 to 90. Beyond the template\'s maximum lease an approver decides.')),
      h('p', { class: 'form-error', role: 'alert' }),
      h('div', { class: 'actions' }, extendSubmit),
      extendStatus);
    const extendPanel = h('section', { class: 'panel', 'aria-labelledby': 'extend-heading', hidden: true, testid: 'extend-panel' },
      h('h2', { id: 'extend-heading' }, 'Extend the lease'),
      extendForm);
    extendForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(extendForm);
      extendStatus.textContent = '';
      const n = days.value.trim();
      extendSubmit.disabled = true;
      try {
        const a = await api('POST', `${path('accounts', id)}/extend`, { body: { days: /^\d+$/.test(n) ? Number(n) : n } });
        if (a && a.pending_extension) {
          extendStatus.textContent = `The extension of ${a.pending_extension.days} day${a.pending_extension.days === 1 ? '' : 's'} waits for an approver: it goes beyond the template's maximum lease.`;
        } else {
          extendStatus.textContent = `Lease extended to ${fmtDateTime(a && a.lease_end)}.`;
        }
        lastSig = null;
        tick();
      } catch (error) {
        showError(extendForm, error);
      } finally {
        extendSubmit.disabled = false;
      }
    });

    replace(main,
      h('p', {}, h('a', { href: '#/accounts' }, '← My accounts')),
      heading(`Account ${id}`, 'page-title'),
      error,
      box,
      extendPanel);

    function draw(a) {
      const access = a.access || null;
      const link = access && access.link ? safeUrl(access.link) : null;
      const rows = [
        ['State', badge(a.state)],
        ['Team', h('a', { href: `#/teams/${encodeURIComponent(a.team)}` }, a.team)],
        ['Owner', a.owner],
        ['Purpose', a.purpose],
        ['AWS account', a.account_id ? h('span', { class: 'mono', testid: 'detail-account-id' }, a.account_id) : 'not created yet'],
        ['Root email', a.email || '—'],
        ['Organizational unit', a.ou ? h('span', { class: 'mono' }, a.ou) : '—'],
        ['Lease ends', a.lease_end ? [timeEl(a.lease_end, fmtDateTime(a.lease_end)), ` (${relative(a.lease_end)})`] : 'no lease end'],
        ['Requested', timeEl(a.created_at, fmtDateTime(a.created_at))],
        ['Last change', timeEl(a.updated_at, fmtDateTime(a.updated_at))],
      ];
      if (a.lease_days) rows.splice(8, 0, ['Lease', `${a.lease_days} day${a.lease_days === 1 ? '' : 's'}, extensions included`]);
      rows.splice(4, 0, ['Lease template', a.template
        ? h('span', { testid: 'detail-template' }, `${a.template.name}, version ${a.template.version}`)
        : h('span', { class: 'muted', testid: 'detail-template' }, 'none')]);
      if (a.decision) rows.push(['Decision', h('span', { testid: 'detail-decision' }, describeDecision(a.decision))]);
      if (a.pending_extension) {
        const x = a.pending_extension;
        rows.push(['Extension waiting', h('span', { testid: 'detail-pending-extension' },
          `${x.days} more day${x.days === 1 ? '' : 's'}, asked by ${x.requested_by} on ${fmtDateTime(x.requested_at)}; an approver decides`)]);
      }
      if (a.failure_reason) rows.push(['Why it failed', h('span', { testid: 'failure-reason' }, a.failure_reason)]);
      if (a.blueprint) {
        // The template's StackSet: what it is, where, and how it went.
        const b = a.blueprint;
        const said = { deploying: 'deploying; the account is ready when it is done', succeeded: 'deployed', failed: 'failed' }[b.status] || b.status;
        rows.push(['Blueprint', h('span', { testid: 'detail-blueprint' },
          `StackSet ${b.stack_set} in ${(b.regions || []).join(', ')}: ${said}`,
          b.reason ? h('span', { class: 'sub' }, b.reason) : null)]);
      }
      if (access) {
        rows.push(['Sign-in', [
          access.status ? access.status.replace(/_/g, ' ') : '—',
          access.permission_set ? ` as ${access.permission_set}` : '',
          access.reason ? h('span', { class: 'sub' }, access.reason) : null,
        ]]);
        if (link) {
          rows.push(['Sign-in link', h('a', { href: link, target: '_blank', rel: 'noopener noreferrer', testid: 'signin-link' }, 'Sign in through the access portal')]);
        }
      }
      const timeline = Array.isArray(a.timeline) ? a.timeline : null;
      replace(box,
        h('section', { class: 'panel', 'aria-labelledby': 'about-heading' },
          h('h2', { id: 'about-heading', class: 'visually-hidden' }, 'About this account'),
          h('dl', { class: 'details' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
          STATES_CLOSABLE.has(a.state)
            ? h('div', { class: 'actions' }, h('button', { type: 'button', class: 'danger', testid: 'close-button', onclick: () => closeAccount(a) }, 'Close this account'))
            : null),
        h('section', { class: 'panel', 'aria-labelledby': 'timeline-heading' },
          h('h2', { id: 'timeline-heading' }, 'Timeline'),
          timeline && timeline.length > 0
            ? h('ol', { class: 'timeline', testid: 'timeline' }, timeline.map((t) => h('li', { testid: 'timeline-entry' },
              timeEl(t.at, fmtDateTime(t.at, true)),
              h('span', {}, t.event || ''), ' ', t.state ? badge(t.state) : null)))
            : h('p', { class: 'muted' }, 'No events recorded yet.')));
    }

    return {
      async refresh(alive) {
        try {
          const a = await api('GET', path('accounts', id));
          if (!alive()) return;
          pageError(error, null);
          extendPanel.hidden = !STATES_EXTENDABLE.has(a.state);
          const sig = signatureOf([a, Math.floor(Date.now() / 60000)]);
          if (sig !== lastSig) {
            lastSig = sig;
            draw(a);
          }
        } catch (e) {
          if (!alive()) return;
          pageError(error, e);
          if (e.status === 403 || e.status === 404) {
            lastSig = null;
            extendPanel.hidden = true;
            box.replaceChildren();
          }
        }
      },
    };
  }

  /** Who or what decided: an approver, the template's auto rules, expiry. */
  function describeDecision(d) {
    const text = decisionText(d);
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function decisionText(d) {
    const what = d.extension_days ? `an extension of ${d.extension_days} days` : 'the request';
    const why = d.reason ? `: ${d.reason}` : '';
    const when = d.at ? ` (${fmtDateTime(d.at)})` : '';
    switch (d.outcome) {
      case 'pending': return `${what} waits for an approver${why}`;
      case 'approved':
        if (d.by === 'auto') return `${what} approved at once by the template's rules${d.rule ? ` (${d.rule.replace(/^auto:\s*/, '')})` : ''}${when}`;
        return `${what} approved by ${d.by}${why}${when}`;
      case 'denied': return `${what} denied by ${d.by}${why}${when}`;
      case 'expired': return `${what} expired: nobody decided in time${why}${when}`;
      default: return `${d.outcome || 'decided'} by ${d.by || '—'}${why}`;
    }
  }

  // Team spend: figures, the chart, where the money goes.
  function teamPage(main, team) {
    const error = h('p', { class: 'page-error', role: 'alert', testid: 'page-error', hidden: true });
    const box = h('div', { testid: 'team-spend' });
    const title = heading(`Team ${team}: spend`, 'page-title');
    let lastSig = null;
    replace(main, title, error, box);

    function figure(label, value, sub, testid) {
      return h('div', { class: 'figure' },
        h('dt', {}, label),
        h('dd', { testid }, value, sub ? h('span', { class: 'sub' }, sub) : null));
    }

    function draw(d) {
      const cur = d.currency || 'USD';
      const b = d.budget || null;
      const pct = b ? percent(d.total, b.amount) : null;
      const forecast = d.forecast !== undefined && d.forecast !== null ? d.forecast : b && b.forecast;
      const crossed = b ? (b.crossed_thresholds || []) : [];
      title.textContent = `Team ${team}: spend in ${monthName(d.period)}`;
      const enforcement = [];
      if (b && b.frozen) enforcement.push('accounts frozen');
      if (throttledCount(b) > 0) enforcement.push(`${throttledCount(b)} function(s) throttled`);
      const figures = h('dl', { class: 'figures' },
        figure('Spent this month', money(d.total, cur),
          b ? `of ${money(b.amount, b.currency || cur)} budget${pct !== null ? ` (${fmtPercent(pct)})` : ''}` : 'no budget set', 'spend-total'),
        figure('Budget', b ? money(b.amount, b.currency || cur) : 'none',
          b ? `thresholds ${(b.thresholds || []).map((t) => `${t}%`).join(', ')}${b.mode === 'forecast' ? '; acts on the forecast' : ''}` : 'an admin can set one', 'spend-budget'),
        figure('Forecast for the month', forecast !== undefined && forecast !== null ? money(forecast, cur) : '—',
          'at the run rate so far', 'spend-forecast'),
        figure('Thresholds crossed', crossed.length ? crossed.map((t) => `${t}%`).join(', ') : 'none',
          enforcement.length ? enforcement.join('; ') : (b ? 'no action taken' : ''), 'spend-crossed'),
        figure('Figures from', SOURCES[d.source] || d.source || '—',
          d.settled_at ? `settled ${fmtDateTime(d.settled_at)}` : (d.source_explained || 'not settled yet'), 'spend-source'));

      replace(box,
        figures,
        h('section', { class: 'panel chart-panel', 'aria-labelledby': 'chart-heading' },
          h('h2', { id: 'chart-heading' }, 'Daily cost'),
          chart(d),
          h('ul', { class: 'legend', 'aria-hidden': 'true' },
            h('li', { class: 'l-bar' }, 'cost per day'),
            h('li', { class: 'l-cum' }, 'month so far'),
            b ? h('li', { class: 'l-budget' }, 'budget') : null,
            b ? h('li', { class: 'l-threshold' }, 'thresholds') : null,
            h('li', { class: 'l-deploy' }, 'deployments')),
          dailyTable(d)),
        h('div', { class: 'two-col' },
          h('section', { class: 'panel', 'aria-labelledby': 'top-accounts-heading' },
            h('h2', { id: 'top-accounts-heading' }, 'Top accounts'),
            table('top-accounts', ['Account', 'Owner', 'Spend'], (d.top_accounts || []).map((a) => [
              [a.id ? h('a', { href: `#/accounts/${encodeURIComponent(a.id)}` }, a.account_id || a.id) : a.account_id,
                a.id ? h('span', { class: 'sub' }, a.id) : null],
              a.owner || '—',
              { num: money(a.amount, cur) },
            ]), 'No spend recorded yet.')),
          h('section', { class: 'panel', 'aria-labelledby': 'top-functions-heading' },
            h('h2', { id: 'top-functions-heading' }, 'Top functions'),
            d.functions_source ? h('p', { class: 'hint' }, `Figures ${d.functions_source}.`) : null,
            table('top-functions', ['Function', 'Account', 'Spend'], (d.top_functions || []).map((f) => [
              h('span', { class: 'mono' }, f.function),
              h('span', { class: 'mono' }, f.account_id),
              { num: money(f.amount, cur) },
            ]), 'No invocations recorded yet.'))),
        h('section', { class: 'panel', 'aria-labelledby': 'deployments-heading' },
          h('h2', { id: 'deployments-heading' }, 'Deployments this month'),
          table('deployments', ['When', 'Stack', 'Status', 'Account', 'Reported by'],
            (d.deployments || []).slice().sort((x, y) => String(y.at).localeCompare(String(x.at))).slice(0, 15).map((x) => [
              timeEl(x.at, fmtDateTime(x.at)),
              x.stack,
              x.status,
              h('span', { class: 'mono' }, x.account_id),
              x.source || '—',
            ]), 'No deployments this month.')));
    }

    return {
      async refresh(alive) {
        try {
          const d = await api('GET', `${path('teams', team)}/spend`);
          if (!alive()) return;
          pageError(error, null);
          const sig = signatureOf(d);
          if (sig !== lastSig) {
            lastSig = sig;
            draw(d);
          }
        } catch (e) {
          if (!alive()) return;
          pageError(error, e);
          if (e.status === 403 || e.status === 404) {
            lastSig = null;
            const mine = (state.me && state.me.teams) || [];
            replace(box, h('p', { class: 'muted' }, mine.length
              ? ['The spend of your teams: ', mine.map((t, i) => [i ? ', ' : '', h('a', { href: `#/teams/${encodeURIComponent(t)}` }, t)]), '. A platform admin can add you to a team.']
              : 'You are not a member of any team; a platform admin can add you to one.'));
          }
        }
      },
    };
  }

  /** A table; a cell given as {num: text} is a right-aligned figure. */
  function table(testid, heads, rows, empty) {
    if (rows.length === 0) return h('p', { class: 'empty', testid: `${testid}-empty` }, empty);
    return h('div', { class: 'table-wrap' }, h('table', { class: 'cards', testid },
      h('thead', {}, h('tr', {}, heads.map((t, i) => h('th', { scope: 'col', class: isNum(rows[0][i]) ? 'num' : '' }, t)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => h('td', { 'data-label': heads[i], class: isNum(c) ? 'num' : '' }, isNum(c) ? c.num : c)))))));
  }

  function isNum(c) {
    return c && typeof c === 'object' && !(c instanceof Node) && !Array.isArray(c) && 'num' in c;
  }

  function daysOf(d) {
    const m = /^(\d{4})-(\d{2})$/.exec(d.period || '');
    const year = m ? Number(m[1]) : new Date().getUTCFullYear();
    const month = m ? Number(m[2]) : new Date().getUTCMonth() + 1;
    const count = new Date(Date.UTC(year, month, 0)).getUTCDate();
    const daily = new Array(count).fill(0);
    let last = 0;
    for (const x of d.days || []) {
      const day = Number(String(x.day).slice(8, 10));
      const n = Number(x.amount);
      if (day >= 1 && day <= count && Number.isFinite(n)) {
        daily[day - 1] += n;
        if (n > 0 || day > last) last = Math.max(last, day);
      }
    }
    // The month-so-far line runs to today in the current month.
    const now = new Date();
    if (now.getUTCFullYear() === year && now.getUTCMonth() + 1 === month) last = Math.max(last, now.getUTCDate());
    return { year, month, count, daily, last };
  }

  function niceStep(max, ticks) {
    const raw = max / ticks;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const norm = raw / mag;
    const step = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
    return step * mag;
  }

  /** The daily cost as inline SVG: bars per day, the month so far, the
   * budget and its thresholds, and deployments as ticks on the x axis. */
  function chart(d) {
    const cur = d.currency || 'USD';
    const b = d.budget || null;
    const { year, month, count, daily, last } = daysOf(d);
    const cumulative = [];
    let sum = 0;
    for (let i = 0; i < last; i += 1) {
      sum += daily[i];
      cumulative.push(sum);
    }
    const budget = b ? Number(b.amount) : NaN;
    const thresholds = b ? (b.thresholds || []).map(Number).filter((t) => Number.isFinite(t) && t !== 100) : [];
    let top = Math.max(sum, ...daily, Number(d.total) || 0, Number.isFinite(budget) ? budget : 0);
    if (!(top > 0)) top = 1;
    const step = niceStep(top * 1.08, 4);
    const yMax = Math.ceil((top * 1.08) / step) * step;

    const W = 720;
    const H = 300;
    const M = { left: 70, right: 56, top: 14, bottom: 46 };
    const pw = W - M.left - M.right;
    const ph = H - M.top - M.bottom;
    const band = pw / count;
    const x = (day) => M.left + (day - 1) * band; // left edge of a day
    const y = (v) => M.top + ph - (v / yMax) * ph;
    const base = M.top + ph;

    const grid = [];
    for (let v = 0; v <= yMax + step / 2; v += step) {
      grid.push(s('line', { class: v === 0 ? 'axis' : 'grid', x1: M.left, x2: M.left + pw, y1: y(v), y2: y(v) }));
      grid.push(s('text', { x: M.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, money(v, cur)));
    }
    const labelEvery = count > 20 ? 5 : 2;
    const xLabels = [];
    for (let day = 1; day <= count; day += 1) {
      if (day === 1 || day % labelEvery === 0) {
        xLabels.push(s('text', { x: x(day) + band / 2, y: base + 30, 'text-anchor': 'middle' }, String(day)));
      }
    }
    const dayName = (day) => new Date(Date.UTC(year, month - 1, day))
      .toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
    const bars = daily.map((v, i) => (v > 0
      ? s('rect', {
        class: 'bar',
        testid: 'chart-bar',
        'data-day': i + 1,
        'data-amount': v,
        x: x(i + 1) + band * 0.15,
        width: Math.max(band * 0.7, 1),
        y: y(v),
        height: Math.max(base - y(v), 1),
      }, s('title', {}, `${dayName(i + 1)}: ${money(v, cur)}`))
      : null));
    const points = cumulative.map((v, i) => `${(x(i + 1) + band / 2).toFixed(1)},${y(v).toFixed(1)}`);
    const line = cumulative.length
      ? s('polyline', { class: 'cumulative', testid: 'chart-cumulative', points: points.join(' '), 'data-total': sum })
      : null;
    const endDot = cumulative.length
      ? s('circle', { class: 'cumulative-dot', cx: x(last) + band / 2, cy: y(sum), r: 3.5 },
        s('title', {}, `Month so far: ${money(d.total, cur)}`))
      : null;
    const budgetLines = [];
    if (Number.isFinite(budget) && budget > 0) {
      budgetLines.push(s('line', { class: 'budget-line', testid: 'chart-budget-line', x1: M.left, x2: M.left + pw, y1: y(budget), y2: y(budget) },
        s('title', {}, `Budget: ${money(budget, cur)}`)));
      budgetLines.push(s('text', { class: 'budget-label', x: M.left + pw + 4, y: y(budget) + 4 }, 'budget'));
      for (const t of thresholds) {
        const v = (budget * t) / 100;
        if (v > yMax) continue;
        budgetLines.push(s('line', { class: 'threshold-line', testid: 'chart-threshold', 'data-threshold': t, x1: M.left, x2: M.left + pw, y1: y(v), y2: y(v) },
          s('title', {}, `${t}% of the budget: ${money(v, cur)}`)));
        budgetLines.push(s('text', { class: 'threshold-label', x: M.left + pw + 4, y: y(v) + 4 }, `${t}%`));
      }
    }
    const start = Date.UTC(year, month - 1, 1);
    const markers = (d.deployments || []).map((dep) => {
      const at = date(dep.at);
      if (!at) return null;
      const dayf = (at.getTime() - start) / 86400000; // days since the 1st, 00:00 UTC
      if (dayf < 0 || dayf > count) return null;
      const cx = M.left + dayf * band;
      const failed = /fail|rollback/i.test(dep.status || '');
      return s('polygon', {
        class: `deployment${failed ? ' failed' : ''}`,
        testid: 'chart-deployment',
        points: `${cx.toFixed(1)},${base + 2} ${(cx - 5).toFixed(1)},${base + 11} ${(cx + 5).toFixed(1)},${base + 11}`,
      }, s('title', {}, `${fmtDateTime(dep.at)}: ${dep.stack} ${dep.status} in ${dep.account_id}${dep.source ? ` (${dep.source})` : ''}`));
    });
    const summary = `Cost per day of team ${d.team || ''} in ${monthName(d.period)}: ${money(d.total, cur)} so far`
      + `${Number.isFinite(budget) ? ` against a budget of ${money(budget, cur)}` : ''}`
      + `; ${(d.deployments || []).length} deployments.`;
    return s('svg', {
      class: 'chart',
      testid: 'spend-chart',
      viewBox: `0 0 ${W} ${H}`,
      role: 'img',
      'aria-labelledby': 'chart-title chart-desc',
      preserveAspectRatio: 'xMidYMid meet',
    },
    s('title', { id: 'chart-title' }, 'Daily cost'),
    s('desc', { id: 'chart-desc' }, summary),
    grid, xLabels,
    s('text', { x: M.left + pw / 2, y: H - 4, 'text-anchor': 'middle' }, `day of ${monthName(d.period)} (UTC)`),
    bars, budgetLines, line, endDot, markers);
  }

  function dailyTable(d) {
    const cur = d.currency || 'USD';
    const days = (d.days || []).filter((x) => Number(x.amount) !== 0);
    return h('details', { class: 'data-table' },
      h('summary', {}, 'The figures as a table'),
      table('daily-table', ['Day', 'Cost'], days.map((x) => [timeEl(x.day, fmtDate(`${x.day}T12:00:00Z`)), { num: money(x.amount, cur) }]), 'Nothing spent this month yet.'));
  }

  // Admin: every team at a glance; quota, members and budget by team.
  function adminPage(main) {
    const denied = h('p', { class: 'page-error', role: 'alert', testid: 'page-error', hidden: true });
    const overview = h('div', { testid: 'admin-overview' });
    const dead = h('p', { testid: 'dead-letters' });
    const editors = h('div', { testid: 'admin-editors' });
    const byTeam = new Map();
    let lastSig = null;

    const newName = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'payments' });
    const newQuota = h('input', { type: 'number', inputmode: 'numeric', min: '0', step: '1', value: '3' });
    const newMembers = h('textarea', { rows: '3', spellcheck: 'false' });
    const newForm = h('form', { testid: 'new-team-form', novalidate: true },
      h('div', { class: 'fields' },
        field('new-team', 'team', 'Team name', newName, 'a-z, 0-9 and -, 2 to 32 characters'),
        field('new-team', 'quota', 'Quota of open accounts', newQuota),
        field('new-team', 'members', 'Members, one per line', newMembers, 'IAM user or role ARNs, or email addresses')),
      h('p', { class: 'form-error', role: 'alert' }),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create team')),
      h('p', { class: 'form-status', role: 'status' }));
    newForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(newForm);
      newForm.querySelector('.form-status').textContent = '';
      const name = newName.value.trim();
      try {
        await api('PUT', path('teams', name || '-'), { body: { quota: numberOrText(newQuota.value), members: lines(newMembers.value) } });
        newForm.reset();
        newForm.querySelector('.form-status').textContent = `Team ${name} saved.`;
        tick();
      } catch (error) {
        showError(newForm, error);
      }
    });

    replace(main,
      heading('Admin', 'page-title'),
      denied,
      h('div', { testid: 'admin-content' },
        h('section', { 'aria-labelledby': 'glance-heading' },
          h('h2', { id: 'glance-heading' }, 'Every team at a glance'),
          dead,
          overview),
        h('section', { 'aria-labelledby': 'editors-heading' },
          h('h2', { id: 'editors-heading' }, 'Quotas, members and budgets'),
          editors),
        h('section', { class: 'panel', 'aria-labelledby': 'new-team-heading' },
          h('h2', { id: 'new-team-heading' }, 'A new team'),
          newForm)));

    function editor(t) {
      const id = `team-${t.team}`;
      const quota = h('input', { type: 'number', inputmode: 'numeric', min: '0', step: '1', value: String(t.quota) });
      const members = h('textarea', { rows: '4', spellcheck: 'false' });
      members.value = (t.members || []).join('\n');
      const teamStatus = h('p', { class: 'form-status', role: 'status', testid: 'team-status' });
      const teamForm = h('form', { testid: 'team-form', novalidate: true, 'aria-label': `Quota and members of ${t.team}` },
        h('div', { class: 'fields' },
          field(id, 'quota', 'Quota of open accounts', quota),
          field(id, 'members', 'Members, one per line', members, 'IAM user or role ARNs, or email addresses')),
        h('p', { class: 'form-error', role: 'alert' }),
        h('div', { class: 'actions' }, h('button', { type: 'submit', testid: 'team-save' }, 'Save quota and members')),
        teamStatus);
      teamForm.addEventListener('submit', async (e) => {
        e.preventDefault();
        clearErrors(teamForm);
        teamStatus.textContent = '';
        try {
          const saved = await api('PUT', path('teams', t.team), { body: { quota: numberOrText(quota.value), members: lines(members.value) } });
          quota.value = String(saved.quota);
          members.value = (saved.members || []).join('\n');
          teamStatus.textContent = `Saved: quota ${saved.quota}, ${(saved.members || []).length} member(s).`;
          tick();
        } catch (error) {
          showError(teamForm, error);
        }
      });

      const cur = (t.budget && t.budget.currency) || 'USD';
      const amount = h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off', value: t.budget ? t.budget.amount : '' });
      const budgetStatus = h('p', { class: 'form-status', role: 'status', testid: 'budget-status' });
      const rules = h('p', { class: 'hint', testid: 'budget-rules' });
      const budgetForm = h('form', { testid: 'budget-form', novalidate: true, 'aria-label': `Budget of ${t.team}` },
        h('div', { class: 'fields' },
          field(id, 'amount', `Monthly budget (${cur})`, amount, 'A decimal, like 150.00. Raising it above the spend unfreezes the team\'s accounts.')),
        rules,
        h('p', { class: 'form-error', role: 'alert' }),
        h('div', { class: 'actions' }, h('button', { type: 'submit', testid: 'budget-save' }, 'Save budget')),
        budgetStatus);
      budgetForm.addEventListener('submit', async (e) => {
        e.preventDefault();
        clearErrors(budgetForm);
        budgetStatus.textContent = '';
        try {
          // The thresholds and actions stay as they are: read them first.
          let current = null;
          try {
            current = await api('GET', `${path('teams', t.team)}/budget`);
          } catch (error) {
            if (error.status !== 404) throw error;
          }
          const body = current
            ? { amount: amount.value.trim(), currency: current.currency, thresholds: current.thresholds, actions: current.actions, mode: current.mode, runaway: current.runaway }
            : { amount: amount.value.trim(), currency: 'USD' };
          if (body.mode === undefined || body.mode === null) delete body.mode;
          if (!Array.isArray(body.runaway)) delete body.runaway;
          const saved = await api('PUT', `${path('teams', t.team)}/budget`, { body });
          amount.value = saved.amount;
          budgetStatus.textContent = `Saved: ${money(saved.amount, saved.currency)} a month.`;
          tick();
        } catch (error) {
          showError(budgetForm, error);
        }
      });

      const section = h('section', { class: 'panel team-editor', testid: 'team-editor', 'data-team': t.team, 'aria-labelledby': `${id}-heading` },
        h('h3', { id: `${id}-heading` }, h('a', { href: `#/teams/${encodeURIComponent(t.team)}` }, t.team)),
        h('div', { class: 'two-col' }, teamForm, budgetForm));
      return { section, rules, update(team) { rules.textContent = describeRules(team.budget); } };
    }

    function meter(t) {
      const b = t.budget;
      if (!b) return h('span', { class: 'muted' }, 'no budget');
      const pct = percent(b.spend, b.amount) || 0;
      const bar = h('span', {});
      bar.style.width = `${Math.min(pct, 100)}%`;
      return [
        h('span', {}, `${money(b.spend, b.currency)} of ${money(b.amount, b.currency)}`, h('span', { class: 'sub' }, `${fmtPercent(pct)}; forecast ${money(b.forecast, b.currency)}`)),
        h('div', { class: `meter ${t.status}`, role: 'img', 'aria-label': `${fmtPercent(pct)} of the budget spent` }, bar),
      ];
    }

    function draw() {
      const me = state.me;
      if (!me) return;
      if (!me.admin) {
        pageError(denied, { message: `Only platform admins see this page; you act as ${me.principal}.` });
        main.querySelector('[data-testid="admin-content"]').hidden = true;
        return;
      }
      pageError(denied, null);
      main.querySelector('[data-testid="admin-content"]').hidden = false;
      const teams = (state.teams && state.teams.items) || [];
      const dl = state.teams && state.teams.dead_letters;
      setText(dead, dl
        ? (dl.waiting > 0
          ? `${dl.waiting} failed deliver${dl.waiting === 1 ? 'y waits' : 'ies wait'} in the dead-letter queue: purser events dlq lists them, purser events redrive retries them.`
          : 'No failed deliveries wait in the dead-letter queue.')
        : '');
      dead.hidden = !dl;
      const sig = signatureOf([teams, Math.floor(Date.now() / 60000)]);
      if (sig === lastSig) return;
      lastSig = sig;
      replace(overview, teams.length === 0
        ? h('p', { class: 'empty' }, 'No teams yet. Create one below.')
        : h('div', { class: 'table-wrap' }, h('table', { class: 'cards', testid: 'admin-teams' },
          h('thead', {}, h('tr', {}, ['Team', 'Status', 'Spend this month', 'Open accounts', 'Members'].map((x) => h('th', { scope: 'col' }, x)))),
          h('tbody', {}, teams.map((t) => h('tr', { testid: 'admin-team-row', 'data-team': t.team, 'data-status': t.status },
            h('td', { 'data-label': 'Team' }, h('a', { href: `#/teams/${encodeURIComponent(t.team)}` }, t.team)),
            h('td', { 'data-label': 'Status' }, badge(t.status, statusLabel(t))),
            h('td', { 'data-label': 'Spend this month' }, meter(t)),
            h('td', { 'data-label': 'Open accounts', class: 'num' }, `${t.open_accounts} of ${t.quota}`),
            h('td', { 'data-label': 'Members', class: 'num' }, String((t.members || []).length))))))));
      const seen = new Set();
      for (const t of teams) {
        seen.add(t.team);
        if (!byTeam.has(t.team)) {
          const ed = editor(t);
          byTeam.set(t.team, ed);
        }
        byTeam.get(t.team).update(t);
      }
      for (const [name, ed] of byTeam) {
        if (!seen.has(name)) {
          ed.section.remove();
          byTeam.delete(name);
        }
      }
      // Keep the editors in the order of the list, moving none that holds the focus.
      const wanted = teams.map((t) => byTeam.get(t.team).section);
      if (wanted.some((el, i) => editors.children[i] !== el)) {
        if (!wanted.some((el) => el.contains(document.activeElement))) editors.replaceChildren(...wanted);
        else for (const el of wanted) if (!el.isConnected) editors.append(el);
      }
    }

    return {
      async refresh() {
        draw();
      },
    };
  }

  // Approvals: requests and extensions of my teams waiting for a decision.
  function approvalsPage(main) {
    const denied = h('p', { class: 'page-error', role: 'alert', testid: 'page-error', hidden: true });
    const status = h('p', { class: 'form-status', role: 'status', testid: 'approvals-status' });
    const list = h('div', { testid: 'approvals' });
    const empty = h('p', { class: 'empty', testid: 'approvals-empty' }, 'Nothing waits for your decision.');
    const tbody = h('tbody', {});
    const tableEl = h('div', { class: 'table-wrap' }, h('table', { class: 'cards', testid: 'approvals-table' },
      h('caption', { class: 'visually-hidden' }, 'Requests and extensions waiting for a decision, oldest first'),
      h('thead', {}, h('tr', {},
        ['Request', 'Team', 'Owner and purpose', 'Template', 'Lease', 'Requested by', 'Decision'].map((x) => h('th', { scope: 'col' }, x)))),
      tbody));
    const rows = new Map(); // key → {tr, cells, update}
    replace(main,
      heading('Approvals', 'page-title'),
      h('p', { class: 'hint' }, 'Requests and lease extensions of your teams that wait for an approver. You never decide your own.'),
      denied,
      status,
      list);

    function keyOf(a) {
      return `${a.id}:${a.pending_extension ? `x${a.pending_extension.requested_at}` : 'r'}`;
    }

    function makeRow(a) {
      const key = keyOf(a);
      const fid = `approval-${a.id}`;
      const reason = h('input', { type: 'text', maxlength: '500', autocomplete: 'off' });
      const approve = h('button', { type: 'button', testid: 'approve-button' }, 'Approve', h('span', { class: 'visually-hidden' }, ` ${a.id}`));
      const deny = h('button', { type: 'submit', class: 'danger', testid: 'deny-button' }, 'Deny', h('span', { class: 'visually-hidden' }, ` ${a.id}`));
      const form = h('form', { class: 'decide', testid: 'decide-form', novalidate: true, 'aria-label': `Decide ${a.id}` },
        field(fid, 'reason', 'Reason (needed to deny)', reason),
        h('p', { class: 'form-error', role: 'alert' }),
        h('div', { class: 'actions' }, approve, deny));
      const decide = async (verb) => {
        clearErrors(form);
        setText(status, '');
        approve.disabled = true;
        deny.disabled = true;
        const text = reason.value.trim();
        try {
          const body = verb === 'deny' ? { reason: text } : (text ? { reason: text } : undefined);
          await api('POST', `${path('accounts', a.id)}/${verb}`, { body });
          const what = a.pending_extension ? `The extension of ${a.id} by ${a.pending_extension.days} days` : `The request ${a.id} (${a.purpose})`;
          setText(status, verb === 'approve'
            ? `${what} is approved${a.pending_extension ? '' : ': the account is being made'}.`
            : `${what} is denied; ${a.owner} reads your reason on the account.`);
          state.approvals = state.approvals.filter((x) => keyOf(x) !== key);
          draw();
          tick();
        } catch (error) {
          showError(form, error);
        } finally {
          approve.disabled = false;
          deny.disabled = false;
        }
      };
      approve.addEventListener('click', () => decide('approve'));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        decide('deny');
      });
      const cells = {
        request: h('td', { 'data-label': 'Request' }),
        team: h('td', { 'data-label': 'Team' }),
        owner: h('td', { 'data-label': 'Owner and purpose' }),
        template: h('td', { 'data-label': 'Template' }),
        lease: h('td', { 'data-label': 'Lease' }),
        by: h('td', { 'data-label': 'Requested by' }),
      };
      const tr = h('tr', { testid: 'approval-row', 'data-id': a.id, 'data-kind': a.pending_extension ? 'extension' : 'request' },
        Object.values(cells), h('td', { 'data-label': 'Decision' }, form));
      let sig = null;
      return {
        tr,
        update(x) {
          const next = signatureOf([x, Math.floor(Date.now() / 60000)]);
          if (next === sig) return;
          sig = next;
          const ext = x.pending_extension;
          const asked = ext ? ext.requested_at : (x.decision && x.decision.at) || x.created_at;
          replace(cells.request,
            h('a', { href: `#/accounts/${encodeURIComponent(x.id)}` }, x.id),
            h('span', { class: 'sub' }, ext ? 'lease extension' : 'new account'),
            x.decision && x.decision.outcome === 'pending' && x.decision.reason && !ext ? h('span', { class: 'sub' }, x.decision.reason) : null);
          replace(cells.team, x.team);
          replace(cells.owner, x.purpose, h('span', { class: 'sub' }, x.owner));
          replace(cells.template, x.template ? `${x.template.name} v${x.template.version}` : h('span', { class: 'muted' }, 'none'));
          replace(cells.lease, ext
            ? [`+${ext.days} days`, h('span', { class: 'sub' }, `now ${x.lease_days || '?'} days${x.lease_end ? `, ends ${fmtDate(x.lease_end)}` : ''}`)]
            : `${x.lease_days || '?'} days`);
          const by = ext ? ext.requested_by : (x.decision && x.decision.outcome === 'pending' && x.decision.by) || x.owner;
          replace(cells.by, by, h('span', { class: 'sub' }, [timeEl(asked, fmtDateTime(asked)), ` (${relative(asked)})`]));
        },
      };
    }

    function draw() {
      const me = state.me;
      if (!me) return;
      if (!mayApprove()) {
        pageError(denied, { message: `Nothing waits for ${me.principal} to decide: platform admins and the approvers a team names (PUT /teams/{team} "approvers") decide requests.` });
      } else {
        pageError(denied, null);
      }
      const items = state.approvals;
      const seen = new Set();
      for (const a of items) {
        const key = keyOf(a);
        seen.add(key);
        if (!rows.has(key)) rows.set(key, makeRow(a));
        rows.get(key).update(a);
      }
      for (const [key, r] of rows) {
        if (!seen.has(key)) {
          r.tr.remove();
          rows.delete(key);
        }
      }
      const wanted = items.map((a) => rows.get(keyOf(a)).tr);
      if (wanted.some((el, i) => tbody.children[i] !== el)) {
        if (!wanted.some((el) => el.contains(document.activeElement))) tbody.replaceChildren(...wanted);
        else for (const el of wanted) if (!el.isConnected) tbody.append(el);
      }
      const show = items.length > 0 ? tableEl : empty;
      if (list.firstChild !== show) replace(list, show);
    }

    return {
      async refresh() {
        draw();
      },
    };
  }

  function statusLabel(t) {
    return {
      frozen: 'frozen',
      over: 'over budget',
      near: 'near budget',
      ok: 'ok',
      no_budget: 'no budget',
    }[t.status] || t.status;
  }

  function describeRules(b) {
    if (!b) return 'No budget yet: a new one warns at 50 %, 80 % and 100 %, and freezes the team\'s accounts at 100 %.';
    const parts = (b.thresholds || []).map((t) => {
      const acts = (b.actions && b.actions[String(t)]) || [];
      return `${t} %: ${acts.length ? acts.join(', ') : 'notify'}`;
    });
    const runaway = (b.runaway || []).map((r) => {
      const when = [];
      if (r.usd_per_hour) when.push(`over ${r.usd_per_hour} USD in an hour`);
      if (r.median_multiple) when.push(`over ${r.median_multiple} x its week's hourly median (and ${r.at_least_usd} USD)`);
      return `per ${r.per}, ${when.join(' or ')}: ${(r.actions || []).join(', ')}`;
    });
    const kept = `Thresholds (kept as they are): ${parts.join('; ')}.`;
    return runaway.length ? `${kept} Runaway rules (kept too): ${runaway.join('; ')}.` : kept;
  }

  function lines(text) {
    return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  }

  function numberOrText(text) {
    const t = String(text).trim();
    return /^\d+$/.test(t) ? Number(t) : t === '' ? null : t;
  }

  function notFound(main) {
    replace(main,
      heading('Not found', 'page-title'),
      h('p', {}, 'This console has no such page. ', h('a', { href: '#/accounts' }, 'My accounts')));
    return { async refresh() {} };
  }

  function pageFor(hash, main) {
    const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map((p) => {
      try {
        return decodeURIComponent(p);
      } catch (e) {
        return p;
      }
    });
    if (parts.length === 0 || (parts[0] === 'accounts' && parts.length === 1)) return accountsPage(main);
    if (parts[0] === 'accounts' && parts.length === 2) return accountPage(main, parts[1]);
    if (parts[0] === 'teams' && parts.length === 2) return teamPage(main, parts[1]);
    if (parts[0] === 'admin' && parts.length === 1) return adminPage(main);
    if (parts[0] === 'approvals' && parts.length === 1) return approvalsPage(main);
    return notFound(main);
  }

  // ---------------------------------------------------------------- ticks

  let timer = null;
  let halted = false;
  let busy = false;
  let again = false;

  /** Refreshes what every page shares, then the page; every 2 s while the
   * page is visible. */
  async function tick() {
    if (halted) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    clearTimeout(timer);
    const mine = generation;
    const alive = () => mine === generation;
    try {
      await refreshShared();
      if (alive()) {
        renderChrome();
        if (page) await page.refresh(alive);
      }
    } catch (e) {
      state.error = e;
      renderAlert();
    } finally {
      busy = false;
    }
    if (again) {
      again = false;
      tick();
      return;
    }
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    if (!halted && document.visibilityState === 'visible') timer = setTimeout(tick, POLL_MS);
  }

  function route(focus) {
    generation += 1;
    if ((location.hash || '#/') === '#/' || location.hash === '') {
      history.replaceState(null, '', '#/accounts');
    }
    page = pageFor(location.hash, els.main);
    renderNav();
    if (focus) {
      const title = els.main.querySelector('h1');
      if (title) title.focus();
    }
    tick();
  }

  async function start() {
    els.main = document.getElementById('main');
    els.alert = document.getElementById('alert');
    els.banners = document.getElementById('banners');
    els.who = document.getElementById('who');
    els.navTeams = document.getElementById('nav-teams');
    els.navTeamsItem = document.getElementById('nav-teams-item');
    els.navAdminItem = document.getElementById('nav-admin-item');
    els.navApprovalsItem = document.getElementById('nav-approvals-item');
    els.navApprovalsCount = document.getElementById('nav-approvals-count');

    if (CONFIG.auth === 'oidc') {
      try {
        await oidc.callback();
      } catch (e) {
        showSignIn(e.message);
        return;
      }
      if (!oidc.token()) {
        await signInAgain().catch(() => {});
        return;
      }
    } else if (CONFIG.auth !== 'local') {
      replace(els.main,
        heading('The console has no sign-in', 'page-title'),
        h('p', { class: 'page-error', role: 'alert', testid: 'page-error' },
          CONFIG.auth === 'broken'
            ? `The console's settings cannot be read: ${CONFIG.error}`
            : 'This deployment names no identity provider for the console. The purser CLI and the HTTP API (IAM auth) work; a platform admin sets the console\'s parameters (see docs/deploying.md).'));
      return;
    }

    window.addEventListener('hashchange', () => route(true));
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') tick();
      else clearTimeout(timer);
    });
    route(false);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
