// selftest.mjs is run by TestNodeHarness (node_test.go). It proves that the
// locked client packages load in Node and that @stomp/stompjs can speak over
// ws, the WebSocket implementation Node 20 lacks: it answers one CONNECT from
// a loopback ws server with CONNECTED, then prints one JSON line to stdout.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Client } from "@stomp/stompjs";
import WebSocket, { WebSocketServer } from "ws";
import SockJS from "sockjs-client";

// version finds the package.json of an installed package from its resolved
// entry point; @stomp/stompjs does not export its package.json.
function version(name) {
  let dir = dirname(fileURLToPath(import.meta.resolve(name)));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
      if (pkg.name === name) return pkg.version;
    } catch {}
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json for ${name}`);
    dir = up;
  }
}

// connectOnce starts a fake STOMP server on 127.0.0.1:0 that answers CONNECT
// with CONNECTED and DISCONNECT with its RECEIPT (Client.deactivate waits for
// it), and resolves with the version header the client saw in CONNECTED.
async function connectOnce() {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((resolve) => server.once("listening", resolve));
  server.on("connection", (sock) => {
    sock.on("message", (data) => {
      const frame = data.toString();
      if (frame.startsWith("CONNECT\n")) {
        sock.send("CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0");
      } else if (frame.startsWith("DISCONNECT\n")) {
        const receipt = /\nreceipt:([^\n]*)/.exec(frame);
        if (receipt) sock.send(`RECEIPT\nreceipt-id:${receipt[1]}\n\n\0`);
      }
    });
  });
  const url = `ws://127.0.0.1:${server.address().port}/`;
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no CONNECTED and RECEIPT in 10s")), 10000);
      const client = new Client({
        webSocketFactory: () => new WebSocket(url, ["v12.stomp"]),
        reconnectDelay: 0,
        heartbeatIncoming: 0,
        heartbeatOutgoing: 0,
        onConnect: (frame) => {
          client.deactivate().then(() => {
            clearTimeout(timer);
            resolve(frame.headers.version);
          });
        },
        onStompError: (frame) => reject(new Error(frame.headers.message)),
        onWebSocketError: () => reject(new Error("websocket error")),
      });
      client.activate();
    });
  } finally {
    for (const sock of server.clients) sock.terminate();
    server.close();
  }
}

const out = {
  versions: {
    "@stomp/stompjs": version("@stomp/stompjs"),
    "sockjs-client": version("sockjs-client"),
    ws: version("ws"),
  },
  types: { Client: typeof Client, WebSocket: typeof WebSocket, SockJS: typeof SockJS },
  connectedVersion: await connectOnce(),
  env: process.env.STOMPBOX_SELFTEST ?? null,
};
console.log(JSON.stringify(out));
