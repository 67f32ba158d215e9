// Package chatstomp is the glue between the chat service and the broker
// (Glue). It owns the chat's STOMP face: authentication of a CONNECT
// (the session cookie, or login and passcode: a password, an API token,
// or a guest name), the application handlers /chat/message,
// /chat/typing, /chat/edit, /chat/delete and /chat/react (under /pub and
// /app), authorization of room subscriptions with since-id replay, room
// presence, the typing relay, and the pending notifications a returning
// user gets on /user/queue/notifications.
//
// What it promises:
//   - A chat message is stored, then delivered, then receipted: the
//     /chat/message handler returns only after chat.Service.Post, which
//     committed the message and published it through DeliverRoom.
//   - A refused SEND is explained on /user/queue/errors when the sender
//     subscribed there (the connection stays open), else by an ERROR frame.
//     A disk fault is told as "message not saved", never as an internal
//     error.
//   - A room subscription with since-id gets what it missed and then the
//     live messages, with no gap and no duplicate (hold, replay, release).
//   - Clients cannot publish straight to a room topic: that would skip
//     storage and authorization.
//   - DeliverRoom and NotifyUser never block; they deliver to this node's
//     sessions only, since every node applies every stored message.
//   - Access ends when it ends (access.go): a session rests on the login
//     it authenticated with (account, login session, API token, password);
//     EndLogins closes it, EndRoomAccess ends its room subscriptions and
//     tells the page (ACCESS_ENDED), WatchLogins finds logins ended behind
//     the server's back, and every chat SEND checks its login again. An
//     API token's scopes hold: posting needs "post", room subscriptions
//     and notifications "read".
//
// It implements the broker's authenticator (AuthenticateSTOMP) and the
// chat service's Deliver and Notify hooks. It owns no interface.
//
// Of stompbox it imports only internal/apperr, internal/auth,
// internal/broker, internal/chat, internal/proto, internal/stomp,
// internal/store and internal/transport. It never imports the cluster,
// the files, SockJS or the web layer (layout_test.go).
package chatstomp
