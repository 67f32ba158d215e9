// STOMP flows driven through @stomp/stompjs (the client Spring and browser
// apps use) over the `ws` package, against a running stompbox. The Go test
// TestStompJSFlows starts the server and runs one flow per process:
//
//   STOMPBOX_WS_URL=ws://127.0.0.1:PORT/ws STOMPBOX_FLOW=FLOW node flows.mjs
//
// Each flow prints "ok FLOW" and exits 0, or throws (exit 1) saying what broke.
import { Client, Versions } from '@stomp/stompjs';
import WebSocket from 'ws';

const url = process.env.STOMPBOX_WS_URL;
const flow = process.env.STOMPBOX_FLOW || process.argv[2];
const deadline = setTimeout(() => fail(`flow ${flow} timed out`), 15000);

function fail(msg) {
  console.error(msg);
  process.exit(1);
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// connect resolves with an active client once CONNECTED arrived.
function connect(opts = {}) {
  const { versions = ['1.2', '1.1', '1.0'], headers = {}, ...rest } = opts;
  const vs = new Versions(versions);
  return new Promise((resolve, reject) => {
    const c = new Client({
      webSocketFactory: () => new WebSocket(url, vs.protocolVersions()),
      stompVersions: vs,
      connectHeaders: headers,
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      debug: () => {},
      ...rest,
    });
    c.onConnect = (frame) => { c.connectedFrame = frame; resolve(c); };
    c.onStompError = (frame) => reject(new Error(`ERROR ${frame.headers.message}`));
    c.onWebSocketError = (e) => reject(new Error(`websocket error ${e.message}`));
    c.activate();
  });
}

// receipt publishes with a receipt header and resolves when it arrives.
function publishWithReceipt(c, params) {
  const id = `r-${Math.random().toString(36).slice(2)}`;
  return new Promise((resolve) => {
    c.watchForReceipt(id, resolve);
    c.publish({ ...params, headers: { ...(params.headers || {}), receipt: id } });
  });
}

// subscribeSync subscribes and resolves once the server has the subscription
// (its receipt arrived). Messages are collected into the returned array; next()
// resolves with the next one.
function subscribeSync(c, destination, headers = {}) {
  const got = [];
  const waiters = [];
  const id = `r-${Math.random().toString(36).slice(2)}`;
  return new Promise((resolve) => {
    c.watchForReceipt(id, () => resolve(box));
    const sub = c.subscribe(destination, (m) => {
      const w = waiters.shift();
      if (w) w(m); else got.push(m);
    }, { ...headers, receipt: id });
    const box = {
      sub, got,
      next: () => got.length ? Promise.resolve(got.shift()) : new Promise((r) => waiters.push(r)),
    };
  });
}

const flows = {
  async pubsub() {
    const sub = await connect();
    const pub = await connect();
    const box = await subscribeSync(sub, '/topic/greetings');
    await publishWithReceipt(pub, {
      destination: '/topic/greetings',
      body: '안녕하세요, stompbox! 👋',
      headers: { 'content-type': 'text/plain;charset=utf-8', 'x-team': 'blue:green' },
    });
    const m = await box.next();
    assert(m.body === '안녕하세요, stompbox! 👋', `body ${m.body}`);
    assert(m.headers['x-team'] === 'blue:green', `escaped header ${m.headers['x-team']}`);
    assert(m.headers['content-type'] === 'text/plain;charset=utf-8', 'content-type');
    assert(m.headers.destination === '/topic/greetings', 'destination');
    assert(m.headers['message-id'] && m.headers.subscription === box.sub.id, 'ids');
    await sub.deactivate();
    await pub.deactivate();
  },

  async versions() {
    for (const v of ['1.0', '1.1', '1.2']) {
      const c = await connect({ versions: [v] });
      assert(c.connectedFrame.headers.version === v, `asked ${v}, got ${c.connectedFrame.headers.version}`);
      const box = await subscribeSync(c, '/topic/v' + v.replace('.', ''), v === '1.0' ? {} : {});
      await publishWithReceipt(c, { destination: '/topic/v' + v.replace('.', ''), body: 'hi ' + v });
      const m = await box.next();
      assert(m.body === 'hi ' + v, `body ${m.body}`);
      await c.deactivate();
    }
  },

  async binary() {
    const c = await connect();
    const box = await subscribeSync(c, '/queue/bin');
    const bytes = new Uint8Array([1, 0, 2, 0, 255, 10, 0]);
    await publishWithReceipt(c, { destination: '/queue/bin', binaryBody: bytes, headers: { 'content-type': 'application/octet-stream' } });
    const m = await box.next();
    assert(Buffer.from(m.binaryBody).equals(Buffer.from(bytes)), `binary body ${[...m.binaryBody]}`);
    await c.deactivate();
  },

  async 'queue-nack-redelivery'() {
    const a = await connect();
    const b = await connect();
    const pub = await connect();
    const boxA = await subscribeSync(a, '/queue/jobs', { ack: 'client-individual' });
    await publishWithReceipt(pub, { destination: '/queue/jobs', body: 'job-1' });
    const m = await boxA.next();
    assert(m.body === 'job-1', 'first delivery');
    const boxB = await subscribeSync(b, '/queue/jobs', { ack: 'client-individual' });
    m.nack();
    const again = await boxB.next();
    assert(again.body === 'job-1', `redelivered ${again.body}`);
    again.ack();
    await Promise.all([a.deactivate(), b.deactivate(), pub.deactivate()]);
  },

  async 'queue-round-robin'() {
    const a = await connect();
    const b = await connect();
    const pub = await connect();
    const boxA = await subscribeSync(a, '/queue/rr');
    const boxB = await subscribeSync(b, '/queue/rr');
    for (let i = 0; i < 6; i++) await publishWithReceipt(pub, { destination: '/queue/rr', body: String(i) });
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push((await boxA.next()).body, (await boxB.next()).body);
    assert(new Set(seen).size === 6, `each message once: ${seen}`);
    await Promise.all([a.deactivate(), b.deactivate(), pub.deactivate()]);
  },

  async transaction() {
    const c = await connect();
    const box = await subscribeSync(c, '/topic/tx');
    const tx = c.begin();
    c.publish({ destination: '/topic/tx', body: 'in-tx', headers: { transaction: tx.id } });
    const aborted = c.begin();
    c.publish({ destination: '/topic/tx', body: 'aborted', headers: { transaction: aborted.id } });
    aborted.abort();
    await publishWithReceipt(c, { destination: '/topic/tx', body: 'direct' });
    tx.commit();
    assert((await box.next()).body === 'direct', 'transactional SEND acted before COMMIT');
    assert((await box.next()).body === 'in-tx', 'committed SEND missing');
    await publishWithReceipt(c, { destination: '/topic/tx', body: 'after' });
    assert((await box.next()).body === 'after', 'aborted SEND was delivered');
    await c.deactivate();
  },

  async unsubscribe() {
    const c = await connect();
    const box = await subscribeSync(c, '/topic/unsub');
    box.sub.unsubscribe();
    await publishWithReceipt(c, { destination: '/topic/unsub', body: 'late' });
    assert(box.got.length === 0, 'message delivered after UNSUBSCRIBE');
    await c.deactivate();
  },

  // The seed's chat protocol, unchanged: SEND /pub/chat/message, and the
  // stored message (with id and createdAt, sender from the login) arrives on
  // /sub/chat/room/{id}; a RECEIPT comes only after the commit.
  async 'app-destination'() {
    const room = Number(process.env.STOMPBOX_ROOM);
    const creds = (name) => ({ login: name, passcode: process.env.STOMPBOX_PASSCODE });
    const sub = await connect({ headers: creds('lee') });
    const pub = await connect({ headers: creds('kim') });
    const box = await subscribeSync(sub, '/sub/chat/room/' + room);
    const msg = { type: 'TALK', roomId: room, sender: 'someone-else', message: '점심 먹으러 가요' };
    await publishWithReceipt(pub, { destination: '/pub/chat/message', body: JSON.stringify(msg) });
    const m = await box.next();
    const got = JSON.parse(m.body);
    assert(got.message === msg.message && got.roomId === room && got.type === 'TALK', `got ${m.body}`);
    assert(got.sender === 'kim', `sender ${got.sender}: the server must use the login`);
    assert(got.id > 0 && !isNaN(Date.parse(got.createdAt)) && got.createdAt.endsWith('Z'), `id/createdAt ${m.body}`);
    await sub.deactivate();
    await pub.deactivate();
  },

  async 'error-frame'() {
    const c = await connect();
    const err = await new Promise((resolve) => {
      c.onStompError = resolve;
      c.publish({ destination: '/topic/../queue/secret', body: 'x' });
    });
    assert(err.headers.message === 'invalid destination', `ERROR message ${err.headers.message}`);
    await c.deactivate();
  },

  async heartbeat() {
    let pongs = 0;
    const c = await connect({
      heartbeatIncoming: 500,
      heartbeatOutgoing: 500,
      debug: (s) => { if (s === '<<< PONG') pongs++; },
    });
    assert(c.connectedFrame.headers['heart-beat'] !== '0,0', 'no heart-beat offered');
    const box = await subscribeSync(c, '/topic/hb');
    await new Promise((r) => setTimeout(r, 2600));
    assert(pongs >= 3, `only ${pongs} heart-beats from the server in 2.6 s at 500 ms`);
    await publishWithReceipt(c, { destination: '/topic/hb', body: 'still here' });
    assert((await box.next()).body === 'still here', 'connection lost');
    await c.deactivate();
  },
};

if (!flows[flow]) fail(`unknown flow ${flow}; flows: ${Object.keys(flows).join(' ')}`);
flows[flow]().then(() => {
  clearTimeout(deadline);
  console.log(`ok ${flow}`);
  process.exit(0);
}, (e) => fail(`${flow}: ${e.stack || e}`));
