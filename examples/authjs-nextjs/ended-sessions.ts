// Gatehouse sessions that have ended, by the `sid` of their ID token. The
// back-channel logout route (app/api/backchannel-logout/route.ts) adds to it;
// the `jwt` callback in auth.ts checks it on every request, so an ended
// session is signed out on its next page load.
//
// In memory, which is enough for an example: one process, forgotten on
// restart. With several instances of the app, or to survive a restart, keep
// the ended sids where every instance sees them (Redis, the database).
// The map lives on globalThis so that every route of the app shares it.

// Auth.js's default session lifetime: an ended session's cookie is no longer
// renewed, so after this long it has expired anyway and its sid can go.
const KEEP_MS = 30 * 24 * 60 * 60 * 1000;

const store = globalThis as typeof globalThis & { endedSessions?: Map<string, number> };
const ended = (store.endedSessions ??= new Map<string, number>()); // sid → forget after (ms)

export function endSession(sid: string) {
  const now = Date.now();
  for (const [old, until] of ended) if (until < now) ended.delete(old);
  ended.set(sid, now + KEEP_MS);
}

export function sessionEnded(sid: string | undefined): boolean {
  return sid !== undefined && ended.has(sid);
}
