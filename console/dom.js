// Building the page: every value goes in as text (a text node or textContent), never as markup.

/** h('a', {href: '/x', class: 'y'}, 'text', child…): an element; strings become text nodes. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      element.className = value;
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces what `element` holds. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A link inside the console, followed without reloading the page. */
export function link(path, ...children) {
  return h('a', { href: path, 'data-route': '' }, ...children);
}

/** `2026-12-04T16:07:34Z` as the reader's local time, in a <time> element. */
export function when(text) {
  if (!text) return h('span', { class: 'muted' }, '—');
  const date = new Date(text);
  return h('time', { datetime: text }, Number.isNaN(date.getTime()) ? text : date.toLocaleString());
}

export function stateBadge(state) {
  const known = /^[a-z_]+$/.test(state || '') ? state : 'unknown';
  return h('span', { class: `state state-${known}`, 'data-state': state || '' }, state || '—');
}

/** A definition list of [term, value] pairs; values may be nodes. */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([term, value]) => [h('dt', {}, term), h('dd', {}, value ?? '—')]));
}

/** The resource an operation acts on: `vps 1003`, `firewall 12`, `account`. */
export function resourceText(operation) {
  const resource = operation.resource || {};
  if (resource.type) return resource.id === null || resource.id === undefined ? resource.type : `${resource.type} ${resource.id}`;
  return operation.vps_id ? `vps ${operation.vps_id}` : '—';
}

/** JSON shown as text, indented. */
export function code(value) {
  return h('pre', {}, h('code', {}, JSON.stringify(value, null, 2)));
}
