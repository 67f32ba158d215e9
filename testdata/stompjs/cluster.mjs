// Two @stomp/stompjs clients on two nodes of one stompbox cluster
// (TestClusterThreeNodes): kim on node A, lee on node B, both in one room.
//
//   STOMPBOX_WS_A=ws://…/ws STOMPBOX_WS_B=ws://…/ws STOMPBOX_ROOM=ID \
//   STOMPBOX_USER_A=kim STOMPBOX_USER_B=lee STOMPBOX_PASSWORD=… node cluster.mjs
//
// Each sends a run of receipted chat messages and topic messages; each must
// get everyone's, in each sender's order, with the same message ids on both
// nodes. Prints one JSON line: {"ids":[…]} (the chat ids A saw, in order).
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

const env = process.env;
const room = Number(env.STOMPBOX_ROOM);
const perSender = 20;
const deadline = setTimeout(() => fail('cluster flow timed out'), 60000);

function fail(msg) {
  console.error(msg);
  process.exit(1);
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

function connect(url, login) {
  return new Promise((resolve, reject) => {
    const c = new Client({
      webSocketFactory: () => new WebSocket(url, ['v12.stomp']),
      connectHeaders: { login, passcode: env.STOMPBOX_PASSWORD },
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      debug: () => {},
    });
    c.onConnect = () => resolve(c);
    c.onStompError = (f) => reject(new Error(`${login}: ERROR ${f.headers.message}`));
    c.onWebSocketError = (e) => reject(new Error(`${login}: websocket error ${e.message}`));
    c.activate();
  });
}

// subscribe resolves once the server confirmed the subscription; wait(n)
// resolves with the first n messages.
function subscribe(c, destination) {
  const got = [];
  let want = 0, done = null;
  const id = `s-${Math.random().toString(36).slice(2)}`;
  return new Promise((resolve) => {
    c.watchForReceipt(id, () => resolve({
      got,
      wait: (n) => new Promise((r) => { want = n; done = r; if (got.length >= n) r(got); }),
    }));
    c.subscribe(destination, (m) => {
      got.push(m);
      if (done && got.length >= want) done(got);
    }, { receipt: id });
  });
}

function send(c, destination, body) {
  const receipt = `r-${Math.random().toString(36).slice(2)}`;
  return new Promise((resolve) => {
    c.watchForReceipt(receipt, resolve);
    c.publish({ destination, body, headers: { receipt, 'content-type': 'application/json' } });
  });
}

// inOrder checks that each sender's messages arrived in the order sent.
function inOrder(texts, who) {
  const next = {};
  for (const t of texts) {
    const [sender, n] = t.split(' ');
    if (!(sender in next)) next[sender] = 0;
    assert(Number(n) === next[sender], `${who}: ${sender}'s message ${n} arrived when ${next[sender]} was due: ${texts.join(', ')}`);
    next[sender]++;
  }
}

const a = await connect(env.STOMPBOX_WS_A, env.STOMPBOX_USER_A);
const b = await connect(env.STOMPBOX_WS_B, env.STOMPBOX_USER_B);
const dest = `/sub/chat/room/${room}`;
const roomA = await subscribe(a, dest), roomB = await subscribe(b, dest);
const topicA = await subscribe(a, '/topic/cluster.news'), topicB = await subscribe(b, '/topic/cluster.news');

// Both send at once, each waiting for its receipt before the next: a
// RECEIPT means the quorum stored it.
async function talk(c, who) {
  for (let i = 0; i < perSender; i++) {
    await send(c, '/pub/chat/message', JSON.stringify({ type: 'TALK', roomId: room, message: `${who} ${i}` }));
  }
}
async function news(c, who) {
  for (let i = 0; i < perSender; i++) {
    await send(c, '/topic/cluster.news', `${who} ${i}`);
  }
}
await Promise.all([talk(a, 'A'), talk(b, 'B'), news(a, 'A'), news(b, 'B')]);

const [ra, rb] = await Promise.all([roomA.wait(2 * perSender), roomB.wait(2 * perSender)]);
const ta = await topicA.wait(2 * perSender), tb = await topicB.wait(2 * perSender);
const chat = (ms) => ms.map((m) => JSON.parse(m.body));
const ca = chat(ra), cb = chat(rb);
inOrder(ca.map((m) => m.message), 'room on A');
inOrder(cb.map((m) => m.message), 'room on B');
inOrder(ta.map((m) => m.body), 'topic on A');
inOrder(tb.map((m) => m.body), 'topic on B');
const ids = ca.map((m) => m.id);
for (let i = 1; i < ids.length; i++) assert(ids[i] > ids[i - 1], `ids on A not increasing: ${ids}`);
assert(JSON.stringify(ids) === JSON.stringify(cb.map((m) => m.id)), `A and B saw different ids or order: ${ids} / ${cb.map((m) => m.id)}`);
for (const m of ca) assert(m.sender === (m.message.startsWith('A') ? env.STOMPBOX_USER_A : env.STOMPBOX_USER_B), `sender of ${m.message}: ${m.sender}`);
// Nothing more than expected (no duplicate) arrives.
await new Promise((r) => setTimeout(r, 300));
assert(roomA.got.length === 2 * perSender && roomB.got.length === 2 * perSender, `extra messages: ${roomA.got.length}, ${roomB.got.length}`);
assert(topicA.got.length === 2 * perSender && topicB.got.length === 2 * perSender, `extra topic messages: ${topicA.got.length}, ${topicB.got.length}`);

await a.deactivate();
await b.deactivate();
clearTimeout(deadline);
console.log(JSON.stringify({ ids }));
