// SPDX-License-Identifier: MIT
// Shared by the honest-wait tests (webchat_wait, widget_wait): a staff live feed whose
// presence the daemon counts, a visitor socket, and instants in a calendar's zone.
import { FrameSocket } from './lib.mjs';

// A staff feed (GET /v1/events/ws): subscribed = online on this node.
export class StaffFeed extends FrameSocket {
  static async online(d, token) {
    const f = await this.connect(`${d.url.replace('http', 'ws')}/v1/events/ws?access_token=${
      encodeURIComponent(token)}`, 'switchboard.events.v1');
    f.send({ type: 'subscribe', after: null });
    await f.next('subscribed');
    return f;
  }
}

// A visitor socket of the default site (its origin is the daemon's public_url).
export class Visitor extends FrameSocket {
  static open(d) {
    return this.connect(`${d.url.replace('http', 'ws')}/v1/visitor/ws?site=default`,
      'switchboard.visitor.v1', { headers: { origin: d.url } });
  }

  async hello() {
    this.send({ type: 'hello', site: 'default', token: null, last_seq: null });
    return this.next('welcome');
  }
}

// Wall-clock parts of t (ms) in zone.
function parts(t, zone) {
  const f = new Intl.DateTimeFormat('en-GB', { timeZone: zone, weekday: 'short', hour: '2-digit',
    minute: '2-digit', hourCycle: 'h23' });
  const o = {};
  for (const p of f.formatToParts(t)) o[p.type] = p.value;
  return { weekday: o.weekday, hour: +o.hour, minute: +o.minute };
}

// The first whole hour at or after from (ms) that is `weekday` (Mon…Sun) hour:00 in zone.
export function nextLocal(from, zone, weekday, hour) {
  let t = Math.ceil(from / 3600000) * 3600000;
  for (let i = 0; i < 24 * 8 * 4; i++, t += 15 * 60000) {
    const p = parts(t, zone);
    if (p.weekday === weekday && p.hour === hour && p.minute === 0) return t;
  }
  throw new Error(`no ${weekday} ${hour}:00 in ${zone}`);
}
