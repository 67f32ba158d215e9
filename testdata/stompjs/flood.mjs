// flood.mjs publishes STOMPBOX_COUNT frames with receipts as fast as
// @stomp/stompjs lets it, over sockjs-client with one SockJS transport, to a
// /topic/ destination the same client subscribes to, against a running
// stompbox. The Go test TestFlowControlSockJS starts the server and runs:
//
//   STOMPBOX_SOCKJS_URL=http://127.0.0.1:PORT/ws-stomp STOMPBOX_TRANSPORT=xhr-streaming node flood.mjs
//
// It prints one JSON line: how many receipts and messages came, whether they
// came in order, whether an ERROR or a close happened, and the elapsed time.
// It exits 1 (with the reason on stderr) when something is missing.
import { Client } from '@stomp/stompjs';
import SockJS from 'sockjs-client';

const url = process.env.STOMPBOX_SOCKJS_URL;
const transport = process.env.STOMPBOX_TRANSPORT;
const count = Number(process.env.STOMPBOX_COUNT || 1000);
const dest = `/topic/flood-${transport}`;
const deadline = setTimeout(() => fail('timed out', true), 110000);

const result = { transport, count, receipts: 0, messages: 0, inOrder: true, errors: [], closed: false, elapsedMs: 0 };

function fail(msg, print) {
  if (print) console.log(JSON.stringify(result));
  console.error(msg);
  process.exit(1);
}

const client = new Client({
  webSocketFactory: () => new SockJS(url, null, { transports: [transport] }),
  reconnectDelay: 0,
  heartbeatIncoming: 10000,
  heartbeatOutgoing: 10000,
  debug: () => {},
});
client.onStompError = (f) => result.errors.push(f.headers.message);
client.onWebSocketClose = () => { result.closed = true; };

await new Promise((resolve, reject) => {
  client.onConnect = resolve;
  client.onWebSocketError = () => reject(new Error('transport error before CONNECTED'));
  client.activate();
});

// Subscribe and wait for the subscription's receipt, so that no message is
// published before the server files it.
let nextBody = 0;
let allMessages;
const messagesDone = new Promise((r) => { allMessages = r; });
await new Promise((resolve) => {
  client.watchForReceipt('sub', resolve);
  client.subscribe(dest, (m) => {
    if (m.body !== String(nextBody)) result.inOrder = false;
    nextBody++;
    result.messages++;
    if (result.messages === count) allMessages();
  }, { receipt: 'sub' });
});

const start = Date.now();
let allReceipts;
const receiptsDone = new Promise((r) => { allReceipts = r; });
let nextReceipt = 0;
for (let i = 0; i < count; i++) {
  const id = `r${i}`;
  client.watchForReceipt(id, () => {
    if (id !== `r${nextReceipt}`) result.inOrder = false;
    nextReceipt++;
    result.receipts++;
    if (result.receipts === count) allReceipts();
  });
  client.publish({ destination: dest, body: String(i), headers: { receipt: id } });
}
await Promise.all([receiptsDone, messagesDone]);
result.elapsedMs = Date.now() - start;
result.connected = client.connected && !result.closed;
clearTimeout(deadline);
console.log(JSON.stringify(result));
await client.deactivate();
process.exit(0);
