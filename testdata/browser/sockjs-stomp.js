// roundTrip connects @stomp/stompjs through sockjs-client forced to one
// transport, subscribes, sends each body and resolves with what came back
// and which transport SockJS really used.
window.roundTrip = function (transport, bodies) {
  return new Promise(function (resolve, reject) {
    var sock;
    var dest = '/topic/browser-' + transport;
    var got = [];
    var client = new StompJs.Client({
      webSocketFactory: function () {
        sock = new SockJS('/ws-stomp', null, { transports: [transport], timeout: 20000 });
        return sock;
      },
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      debug: function () {},
    });
    var timer = setTimeout(function () { reject(new Error('timed out over ' + transport + ' with ' + got.length + ' messages')); }, 60000);
    client.onStompError = function (f) { reject(new Error('ERROR ' + f.headers.message)); };
    client.onWebSocketClose = function (e) { if (got.length < bodies.length) reject(new Error('closed ' + e.code + ' ' + e.reason + ' over ' + transport)); };
    client.onConnect = function () {
      client.subscribe(dest, function (m) {
        got.push(m.body);
        if (got.length === bodies.length) {
          clearTimeout(timer);
          var used = sock.transport;
          client.deactivate().then(function () { resolve({ transport: used, bodies: got }); });
        }
      }, { receipt: 'sub' });
      client.watchForReceipt('sub', function () {
        bodies.forEach(function (b) {
          client.publish({ destination: dest, body: b, headers: { 'content-type': 'text/plain;charset=utf-8' } });
        });
      });
    };
    client.activate();
  });
};
