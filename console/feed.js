// The event feed (GET /v1/events) followed by long polling: first to its end, then one
// waiting request at a time. Listeners get every event; a page listens while it is shown.

import { api, ApiError } from './api.js';

const listeners = new Set();
let running = false;
let cursor = null;

export function listen(callback) {
  listeners.add(callback);
  start();
  return () => listeners.delete(callback);
}

export function stop() {
  running = false;
}

async function start() {
  if (running) return;
  running = true;
  cursor = null;
  try {
    // The backlog: only its end matters, pages show the current state of what they list.
    for (;;) {
      const page = await api('GET', `/v1/events?limit=500${cursor ? `&after=${encodeURIComponent(cursor)}` : ''}`);
      cursor = page.next || cursor;
      if (page.data.length < 500) break;
    }
    document.documentElement.dataset.feed = 'live';
    let failures = 0;
    while (running) {
      try {
        const page = await api('GET', `/v1/events?wait=25&limit=200${cursor ? `&after=${encodeURIComponent(cursor)}` : ''}`);
        failures = 0;
        cursor = page.next || cursor;
        for (const event of page.data) {
          for (const listener of [...listeners]) {
            try { listener(event); } catch (error) { console.warn('feed listener failed', error); }
          }
        }
      } catch (error) {
        if (error instanceof ApiError && error.status === 410) { cursor = null; running = false; start(); return; }
        if (error instanceof ApiError && error.status === 401) { running = false; return; }
        failures += 1;
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * failures, 10000)));
      }
    }
  } catch (error) {
    running = false;
    console.warn('event feed stopped', error);
  }
}
