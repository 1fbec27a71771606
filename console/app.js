// vpsgate console: a page per route under /console/, drawn from the public API only.

import { api, ApiError, session, signIn, signInWithCertificate } from './api.js';
import { h, fill, link, when, stateBadge, facts, resourceText, code } from './dom.js';
import { listen, stop as stopFeed } from './feed.js';

const main = document.getElementById('main');
const statusLine = document.getElementById('status');
const AFTER_SIGN_IN = 'vpsgate.after';
/** Set by signing out: the sign-in page then waits to be asked before using a certificate. */
const SIGNED_OUT = 'vpsgate.signedout';
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

const routes = [
  [new RegExp('^/console/?$'), () => go('/console/approvals', true)],
  [new RegExp('^/console/signin$'), signInPage],
  [new RegExp('^/console/approvals$'), approvalsPage],
  [new RegExp(`^/console/approvals/(${UUID})$`), approvalPage],
  [new RegExp('^/console/operations$'), operationsPage],
  [new RegExp(`^/console/operations/(${UUID})$`), operationPage],
  [new RegExp('^/console/batches$'), batchesPage],
  [new RegExp('^/console/batches/([0-9]{1,18})$'), batchPage],
  [new RegExp('^/console/freezes$'), freezesPage],
];

/** What the page shown now stops when another replaces it (its feed listener). */
let leave = () => {};
let me = null;

function say(text) {
  statusLine.textContent = text;
}

/** Follows a console path without a reload. */
export function go(path, replace = false) {
  if (replace) history.replaceState(null, '', path); else history.pushState(null, '', path);
  render();
}

async function render() {
  leave();
  leave = () => {};
  const path = location.pathname;
  const signedIn = session.signedIn;
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('signout').hidden = !signedIn;
  document.getElementById('who').textContent = !signedIn ? ''
    : `Signed in as ${session.principal}${session.byCertificate ? ' (client certificate)' : ''}`;
  for (const a of document.querySelectorAll('#nav a')) {
    if (path.startsWith(a.getAttribute('href'))) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (!signedIn && path !== '/console/signin') {
    // A deep link opened before signing in is where sign-in lands.
    sessionStorage.setItem(AFTER_SIGN_IN, path);
    return go('/console/signin', true);
  }
  for (const [pattern, page] of routes) {
    const match = pattern.exec(path);
    if (match) {
      try {
        await page(...match.slice(1));
      } catch (error) {
        showError(error);
      }
      // The page drawn: what tests and assistive tools may wait for (not a page that moved on).
      if (location.pathname === path) document.documentElement.dataset.page = path;
      return;
    }
  }
  title('Not found');
  fill(main, h('h1', {}, 'Not found'), h('p', {}, 'No console page is at this address. ', link('/console/approvals', 'Approvals')));
}

function title(text) {
  document.title = `${text} · vpsgate console`;
}

function showError(error) {
  if (error instanceof ApiError && error.status === 401) {
    session.clear();
    sessionStorage.setItem(AFTER_SIGN_IN, location.pathname);
    return go('/console/signin', true);
  }
  const problem = error instanceof ApiError ? error.problem : {};
  title('Error');
  fill(main, h('h1', {}, error instanceof ApiError && error.status === 404 ? 'Not found' : 'Something went wrong'),
    h('p', { class: 'error', role: 'alert' }, error.message || String(error)),
    problem.correlation_id ? h('p', { class: 'muted' }, `Correlation id: ${problem.correlation_id}`) : null);
}

async function principal() {
  if (!me || me.principal !== session.principal) me = await api('GET', '/v1/me');
  return me;
}

// MARK: - Sign-in

function signInPage() {
  title('Sign in');
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'stack', 'aria-labelledby': 'signin-title' },
    h('label', { for: 'token' }, 'API token'), input,
    h('p', { class: 'muted' }, 'The token stays in this tab only; closing it signs you out.'),
    h('div', {}, h('button', { type: 'submit', class: 'primary' }, 'Sign in')), error);
  const landing = () => {
    sessionStorage.removeItem(SIGNED_OUT);
    const after = sessionStorage.getItem(AFTER_SIGN_IN);
    sessionStorage.removeItem(AFTER_SIGN_IN);
    go(after && /^\/console\/[a-z0-9/-]*$/.test(after) && after !== '/console/signin' ? after : '/console/approvals', true);
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    const token = input.value.trim();
    if (!token) { error.textContent = 'Enter a token.'; return; }
    try {
      me = await signIn(token);
    } catch (failure) {
      error.textContent = failure instanceof ApiError && failure.status === 401 ? 'This token is not valid.' : failure.message;
      return;
    }
    landing();
  });
  // Mutual TLS: the browser's certificate is the identity. GET /v1/me without a token is 200
  // where nginx verified one (signed in as its subject) and 401 elsewhere (the form stays).
  const byCertificate = async (asked) => {
    try {
      me = await signInWithCertificate();
    } catch (failure) {
      if (asked) error.textContent = failure instanceof ApiError && failure.status === 401 ? 'No valid client certificate was presented.' : failure.message;
      return;
    }
    if (location.pathname === '/console/signin') landing();
  };
  const certificate = h('button', { type: 'button', id: 'use-certificate' }, 'Sign in with a client certificate');
  certificate.addEventListener('click', () => { error.textContent = ''; byCertificate(true); });
  const signedOut = sessionStorage.getItem(SIGNED_OUT) === '1';
  fill(main, h('h1', { id: 'signin-title' }, 'Sign in'), form,
    signedOut ? h('p', {}, 'Signed out. A browser with a client certificate may sign in with it again: ', certificate) : null);
  input.focus();
  if (!signedOut) byCertificate(false);
}

// MARK: - Approvals

async function approvalsPage() {
  title('Approvals');
  const started = performance.now();
  const page = await api('GET', '/v1/approvals');
  const rows = page.data.map((request) => h('tr', { 'data-operation': request.id },
    h('td', {}, link(`/console/approvals/${request.id}`, request.command)),
    h('td', {}, resourceText(request)),
    h('td', {}, request.requester),
    h('td', {}, `${request.approvals.given} of ${request.approvals.required}`),
    h('td', {}, request.plan ? request.plan.decision : '—'),
    h('td', {}, when(request.approvals.expires_at)),
    h('td', {}, when(request.created_at))));
  fill(main, h('h1', {}, 'Approvals'),
    h('p', { class: 'muted' }, 'Requests awaiting an approval you may give, oldest first.'),
    rows.length === 0 ? h('p', { id: 'empty' }, 'Nothing awaits your approval.') :
      h('table', { id: 'approvals' },
        h('caption', { class: 'muted' }, `${rows.length} awaiting`),
        h('thead', {}, h('tr', {}, ['Command', 'Resource', 'Requester', 'Approvals', 'Decision now', 'Expires', 'Requested']
          .map((name) => h('th', { scope: 'col' }, name)))),
        h('tbody', {}, rows)));
  performance.mark('vpsgate:approvals-drawn', { detail: { apiAndDrawMs: performance.now() - started } });
  // Live: a new request, a decision or an end redraws the list (the API says what is still open).
  const stopListening = listen((event) => {
    const type = event.type || '';
    const previous = event.data && event.data.previous_state;
    if (!type.startsWith('approval.') && type !== 'operation.awaiting_approval' && previous !== 'awaiting_approval') return;
    if (location.pathname !== '/console/approvals') return;
    stopListening();
    approvalsPage().catch(showError);
  });
  leave = stopListening;
}

async function approvalPage(id) {
  title('Approval request');
  const [operation, approvals, caller] = await Promise.all([
    api('GET', `/v1/operations/${id}`), api('GET', '/v1/approvals'), principal()]);
  const request = approvals.data.find((item) => item.id === id);
  const mayDecide = Boolean(request) && operation.state === 'awaiting_approval';
  const isRequester = operation.requested_by === caller.principal;
  const message = h('p', { id: 'decision-message', role: 'alert' });
  const actions = h('div', { class: 'actions' });

  const decide = async (action, body) => {
    message.textContent = '';
    try {
      const updated = await api('POST', `/v1/operations/${id}/${action}`, { body });
      say(`${action}: the operation is now ${updated.state}.`);
      go(`/console/operations/${id}`);
    } catch (error) {
      message.className = 'error';
      message.textContent = error.message;
    }
  };

  if (mayDecide) {
    actions.append(h('button', { type: 'button', id: 'approve', class: 'primary', onclick: () => decide('approve') }, 'Approve'));
    const reason = h('textarea', { id: 'deny-reason', name: 'reason', rows: '2', cols: '40', maxlength: '500', required: true });
    const deny = h('form', { id: 'deny-form', class: 'stack', 'aria-label': 'Deny' },
      h('label', { for: 'deny-reason' }, 'Reason to deny (required)'), reason,
      h('div', {}, h('button', { type: 'submit', id: 'deny', class: 'danger' }, 'Deny')));
    deny.noValidate = true;  // the reason is checked here, with a message the page shows
    deny.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = reason.value.trim();
      if (!text) {
        message.className = 'error';
        message.textContent = 'A reason is required to deny.';
        reason.setAttribute('aria-invalid', 'true');
        reason.focus();
        return;
      }
      decide('deny', { reason: text });
    });
    actions.append(deny);
  }
  if (isRequester && operation.state === 'awaiting_approval') {
    actions.append(h('button', { type: 'button', id: 'cancel', onclick: () => decide('cancel') }, 'Cancel request'));
  }

  const plan = request && request.plan;
  const approvalsGiven = request ? request.approvals : null;
  fill(main,
    h('h1', {}, `Approval request: ${operation.command}`),
    facts([
      ['Operation', link(`/console/operations/${id}`, id)],
      ['State', stateBadge(operation.state)],
      ['Resource', resourceText(operation)],
      ['Requester', operation.requested_by],
      operation.reason ? ['Reason', operation.reason] : null,
      ['Approvals', approvalsGiven ? `${approvalsGiven.given} of ${approvalsGiven.required}` :
        (operation.approval ? `${operation.approval.required} required` : '—')],
      ['Expires', when(operation.approval && operation.approval.expires_at)],
      ['Requested', when(operation.created_at)],
    ]),
    plan ? [
      h('h2', {}, 'Plan'),
      facts([
        ['Decision now', plan.decision],
        ['Would send', plan.would_send ? `${plan.would_send.method} ${plan.would_send.path}` : 'no longer kept'],
      ]),
      plan.would_send && plan.would_send.body ? [h('h2', {}, 'Body (secrets redacted)'), code(plan.would_send.body)] : null,
      h('h2', {}, 'Effects'),
      h('ul', { id: 'effects' }, (plan.effects || []).map((effect) => h('li', {}, effect))),
    ] : h('p', { class: 'muted' }, isRequester ? 'Your own request: another principal approves it.' : 'You may not decide on this request.'),
    approvalsGiven && approvalsGiven.decisions.length ? [
      h('h2', {}, 'Decisions'),
      h('ul', {}, approvalsGiven.decisions.map((d) => h('li', {}, `${d.decision} by ${d.principal}`, d.reason ? ` (${d.reason})` : '', ' at ', when(d.decided_at)))),
    ] : null,
    vpsNow(operation),
    actions, message);
}

/** The id of the VPS an operation acts on, or null. */
function vpsOf(operation) {
  const resource = operation.resource || {};
  if (resource.type === 'vps' && resource.id !== null && resource.id !== undefined) return resource.id;
  return resource.type ? null : (operation.vps_id ?? null);
}

/** The VPS as Hostinger shows it now (GET /v1/vps/{id}, a read vpsgate caches briefly), drawn
 * when it arrives so it never holds up the page; a VPS the caller may not read or that is gone
 * says so quietly. */
function vpsNow(operation) {
  const vps = vpsOf(operation);
  if (!/^[0-9]{1,18}$/.test(String(vps ?? ''))) return null;
  const body = h('div', { id: 'vps-now', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  api('GET', `/v1/vps/${vps}`).then((vm) => {
    const template = vm && vm.template;
    const addresses = ((vm && vm.ipv4) || []).map((ip) => (ip && typeof ip === 'object' ? ip.address : ip)).filter(Boolean);
    fill(body, facts([
      ['Hostname', vm.hostname ?? '—'],
      ['State', stateBadge(vm.state)],
      ['Template', template && typeof template === 'object' ? (template.name ?? String(template.id ?? '—')) : (template ?? '—')],
      ['IPv4', addresses.length ? addresses.join(', ') : '—'],
    ]));
  }).catch((error) => {
    const known = error instanceof ApiError && (error.status === 403 || error.status === 404);
    fill(body, h('p', { class: 'muted' }, known ? 'Not available: the VPS is gone or you may not read it.' : 'Hostinger could not be read just now.'));
  }).finally(() => body.removeAttribute('aria-busy'));
  return [h('h2', {}, `VPS ${vps} now`), body];
}

// MARK: - Operations

const STATES = ['', 'awaiting_approval', 'approved', 'accepted', 'running', 'succeeded', 'failed', 'cancelled', 'unknown'];

function operationRow(operation) {
  return h('tr', { 'data-operation': operation.id },
    h('td', {}, link(`/console/operations/${operation.id}`, operation.command)),
    h('td', {}, resourceText(operation)),
    h('td', {}, stateBadge(operation.state)),
    h('td', {}, operation.requested_by),
    h('td', {}, when(operation.created_at)),
    h('td', {}, when(operation.completed_at)));
}

async function operationsPage() {
  title('Operations');
  const query = new URLSearchParams(location.search);
  const filter = {};
  for (const name of ['vps', 'state', 'requester', 'command', 'since', 'until']) if (query.get(name)) filter[name] = query.get(name);
  const field = (name, label, input) => h('label', { for: `filter-${name}` }, label, input);
  const state = h('select', { id: 'filter-state', name: 'state' }, STATES.map((s) => h('option', { value: s, selected: s === (filter.state || '') }, s || 'any')));
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter operations' },
    field('vps', 'VPS', h('input', { id: 'filter-vps', name: 'vps', inputmode: 'numeric', size: '8', value: filter.vps || '' })),
    field('state', 'State', state),
    field('requester', 'Requester', h('input', { id: 'filter-requester', name: 'requester', size: '12', value: filter.requester || '' })),
    field('command', 'Command', h('input', { id: 'filter-command', name: 'command', size: '14', value: filter.command || '' })),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (String(value).trim()) next.set(name, String(value).trim());
    go(`/console/operations${next.toString() ? `?${next}` : ''}`);
  });
  const body = h('tbody', { id: 'operations-body' });
  const more = h('button', { type: 'button', id: 'more', hidden: true }, 'Older operations');
  const table = h('table', { id: 'operations' },
    h('thead', {}, h('tr', {}, ['Command', 'Resource', 'State', 'Requester', 'Requested', 'Completed'].map((name) => h('th', { scope: 'col' }, name)))),
    body);
  let before = null;
  const load = async () => {
    const params = new URLSearchParams(filter);
    params.set('limit', '50');
    if (before) params.set('before', before);
    const page = await api('GET', `/v1/operations?${params}`);
    for (const operation of page.data) body.append(operationRow(operation));
    before = page.next_before;
    more.hidden = !before;
  };
  more.addEventListener('click', () => load().catch(showError));
  await load();
  fill(main, h('h1', {}, 'Operations'), form, table, more);

  // Live: a changed operation is redrawn in place; a new one that fits the filters goes on top.
  const fits = (operation) => (!filter.vps || String(operation.vps_id) === filter.vps) && (!filter.state || operation.state === filter.state)
    && (!filter.requester || operation.requested_by === filter.requester) && (!filter.command || operation.command === filter.command);
  leave = listen((event) => {
    const operation = event.data && event.data.operation;
    if (!operation || !operation.id) return;
    const existing = body.querySelector(`tr[data-operation="${CSS.escape(operation.id)}"]`);
    if (existing) existing.replaceWith(operationRow(operation));
    else if (fits(operation) && !before) body.prepend(operationRow(operation));
    else if (fits(operation)) body.prepend(operationRow(operation));
  });
}

async function operationPage(id) {
  title('Operation');
  const draw = async () => {
    const timeline = await api('GET', `/v1/operations/${id}/timeline`);
    const operation = timeline.operation;
    title(`Operation ${operation.command}`);
    const action = operation.hostinger_action;
    fill(main,
      h('h1', {}, `Operation: ${operation.command}`),
      facts([
        ['Id', operation.id],
        ['State', h('span', { id: 'operation-state' }, stateBadge(operation.state))],
        ['Resource', resourceText(operation)],
        ['Requester', operation.requested_by],
        operation.reason ? ['Reason', operation.reason] : null,
        ['Hostinger action', action ? `${action.name || 'action'} ${action.id}: ${action.state || '—'}` : '—'],
        operation.error ? ['Error', code(operation.error)] : null,
        ['Correlation id', operation.correlation_id],
        ['Idempotency key', operation.idempotency_key],
        ['Requested', when(operation.created_at)],
        ['Completed', when(operation.completed_at)],
      ]),
      operation.state === 'awaiting_approval' ? h('p', {}, link(`/console/approvals/${id}`, 'Open the approval request')) : null,
      h('h2', {}, 'Timeline'),
      h('ol', { class: 'timeline', id: 'timeline' }, timeline.data.map((entry) => h('li', {},
        when(entry.at), h('strong', {}, entry.kind),
        entry.outcome ? ` ${entry.outcome}` : '',
        entry.principal ? ` by ${entry.principal}` : '',
        entry.detail && entry.detail.reason ? ` (${entry.detail.reason})` : '',
        entry.detail && entry.detail.operation && entry.detail.previous_state ? ` ${entry.detail.previous_state} → ${entry.detail.operation.state}` : '',
        entry.detail && entry.detail.hostinger_status ? ` Hostinger ${entry.detail.hostinger_status}` : ''))));
  };
  await draw();
  leave = listen((event) => {
    if (event.operation_id === id) draw().catch(showError);
  });
}

// MARK: - Batches

async function batchesPage() {
  title('Batches');
  const page = await api('GET', '/v1/batches?limit=50');
  fill(main, h('h1', {}, 'Batches'),
    page.data.length === 0 ? h('p', {}, 'No batches.') :
      h('table', { id: 'batches' },
        h('thead', {}, h('tr', {}, ['Batch', 'Command', 'State', 'Progress', 'Requester'].map((name) => h('th', { scope: 'col' }, name)))),
        h('tbody', {}, page.data.map((batch) => h('tr', {},
          h('td', {}, link(`/console/batches/${batch.id}`, `#${batch.id}`)),
          h('td', {}, batch.command), h('td', {}, stateBadge(batch.state)),
          h('td', {}, progress(batch.counts)), h('td', {}, batch.requested_by || '—'))))));
}

const CHILD_STATES = ['pending', 'started', 'succeeded', 'failed', 'skipped', 'cancelled'];
const BATCH_OPEN = ['awaiting_approval', 'running', 'halted'];

/** `3 of 10 done: succeeded 2, failed 1, pending 7`: the children by state (those with any). */
function progress(counts) {
  if (!counts || typeof counts !== 'object') return '—';
  const total = Number(counts.total) || 0;
  const done = ['succeeded', 'failed', 'skipped', 'cancelled'].reduce((sum, name) => sum + (Number(counts[name]) || 0), 0);
  const parts = CHILD_STATES.filter((name) => Number(counts[name]) > 0).map((name) => `${name} ${counts[name]}`);
  return `${done} of ${total} done${parts.length ? `: ${parts.join(', ')}` : ''}`;
}

/** Whether the caller holds vps:approve on every VPS of the batch (its grants, from /v1/me). */
function approvesAll(caller, children) {
  const approving = (caller.grants || []).filter((grant) => (grant.permissions || []).includes('vps:approve')).map((grant) => grant.resource);
  if (approving.includes('vps:*')) return true;
  return children.length > 0 && children.every((child) => approving.includes(`vps:${child.vps_id}`));
}

async function batchPage(id) {
  title('Batch');
  const [batch, caller] = await Promise.all([api('GET', `/v1/batches/${id}`), principal()]);
  const message = h('p', { role: 'alert' });
  const act = async (action) => {
    try {
      await api('POST', `/v1/batches/${id}/${action}`);
      go(location.pathname, true);
    } catch (error) {
      message.className = 'error';
      message.textContent = error.message;
    }
  };
  const children = batch.children || [];
  // The API's rule: the requester, or a holder of vps:approve on every VPS of the batch.
  const allowed = batch.requested_by === caller.principal || approvesAll(caller, children);
  const open = BATCH_OPEN.includes(batch.state);
  title(`Batch #${batch.id}`);
  fill(main, h('h1', {}, `Batch #${batch.id}: ${batch.command}`),
    facts([['State', h('span', { id: 'batch-state' }, stateBadge(batch.state))], ['Progress', h('span', { id: 'batch-progress' }, progress(batch.counts))],
      ['Requester', batch.requested_by], batch.reason ? ['Reason', batch.reason] : null,
      batch.halt_reason ? ['Halted because', batch.halt_reason] : null,
      ['Requested', when(batch.created_at)], ['Completed', when(batch.completed_at)]]),
    h('div', { class: 'actions' },
      allowed && open ? h('button', { type: 'button', id: 'batch-cancel', class: 'danger', onclick: () => act('cancel') }, 'Cancel batch') : null,
      allowed && batch.state === 'halted' ? h('button', { type: 'button', id: 'batch-resume', onclick: () => act('resume') }, 'Resume') : null),
    message,
    h('h2', {}, 'Children'),
    h('table', { id: 'batch-children' }, h('thead', {}, h('tr', {}, ['VPS', 'State', 'Attempts', 'Operation'].map((name) => h('th', { scope: 'col' }, name)))),
      h('tbody', {}, children.map((child) => h('tr', { 'data-vps': String(child.vps_id ?? '') },
        h('td', {}, String(child.vps_id ?? '—')), h('td', {}, stateBadge(child.state)), h('td', {}, String(child.attempts ?? '—')),
        h('td', {}, child.operation_id ? link(`/console/operations/${child.operation_id}`, child.operation_id) : '—'))))));
  // Live: any event of this batch or of one of its children redraws it.
  const ids = new Set(children.map((child) => child.operation_id).filter(Boolean));
  leave = listen((event) => {
    const about = event.data && event.data.batch;
    if ((about && String(about.id) === String(batch.id)) || ids.has(event.operation_id)) {
      leave();
      batchPage(id).catch(showError);
    }
  });
}

// MARK: - Freezes

async function freezesPage() {
  title('Freezes');
  const page = await api('GET', '/v1/freezes');
  const windows = page.data || [];
  const text = (value) => (value ? `${value}` : '—');
  fill(main, h('h1', {}, 'Freezes'),
    h('p', { class: 'muted' }, 'Change freezes in force and coming: commands on the VPS they cover answer 423 until they end. Times are UTC.'),
    windows.length === 0 ? h('p', { id: 'no-freezes' }, 'No freeze is in force or coming.') :
      h('table', { id: 'freezes' },
        h('caption', { class: 'muted' }, `${windows.filter((w) => w.state === 'active').length} in force, ${windows.filter((w) => w.state !== 'active').length} coming`),
        h('thead', {}, h('tr', {}, ['Covers', 'State', 'Starts', 'Ends', 'Reason'].map((name) => h('th', { scope: 'col' }, name)))),
        h('tbody', {}, windows.map((w) => h('tr', { 'data-freeze': String(w.id) },
          h('td', {}, w.vps_id === null || w.vps_id === undefined ? 'every VPS' : `vps ${w.vps_id}`),
          h('td', {}, w.state === 'active' ? 'in force' : 'coming'),
          h('td', {}, h('time', { datetime: text(w.starts_at) }, text(w.starts_at))),
          h('td', {}, h('time', { datetime: text(w.ends_at) }, text(w.ends_at))),
          h('td', {}, text(w.reason)))))));
}

// MARK: - Start

document.addEventListener('click', (event) => {
  const anchor = event.target.closest && event.target.closest('a[data-route], #nav a');
  if (!anchor || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  go(anchor.getAttribute('href'));
});
window.addEventListener('popstate', render);
document.getElementById('signout').addEventListener('click', () => {
  if (session.byCertificate) sessionStorage.setItem(SIGNED_OUT, '1');
  session.clear();
  me = null;
  stopFeed();
  go('/console/signin');
});
render();
