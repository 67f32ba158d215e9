// Package web owns the HTTP face of the chat other than STOMP: the JSON
// API under /api/ (accounts, tokens, rooms, messages, files, search,
// export, backup, invites), the HTML pages and their static files (from
// ui/), the admin statistics (GET /api/admin/stats), the security headers
// every response carries, the per-address login limit, how long a request
// body may take (timeouts.go), and which proxies' X-Forwarded-For and
// X-Forwarded-Proto count (-trusted-proxies, security.go).
//
// What it promises:
//   - Only an error's public text reaches a client (apperr.Message, with
//     the status apperr.HTTPStatus chooses); the log gets the rest, once,
//     where the request ends.
//   - A state-changing request a browser sent from another origin is
//     refused.
//   - A message posted over HTTP obeys the same rules as a STOMP SEND: it
//     is stored, then delivered (chat.Service.Post), draws from the same
//     per-user rate (HTTP 429 when it is spent) and the same size limit.
//   - The handlers hold no state of their own and are safe for concurrent
//     use.
//   - X-Forwarded-For and X-Forwarded-Proto count only from a trusted
//     proxy; from anyone else they are removed before any handler runs.
//
// It owns no interface that another package implements. The admin
// statistics read the broker, SockJS and the cluster through the
// functions of StatsSources, which main fills in.
//
// Of stompbox it imports only internal/apperr, internal/auth,
// internal/buildinfo, internal/chat, internal/files, internal/proto,
// internal/ratelimit, internal/store and ui. It never imports the broker,
// SockJS, the transports, the glue or the cluster (layout_test.go).
package web
