package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"stompbox/internal/apperr"
	"stompbox/internal/chat"
	"stompbox/internal/proto"
	"stompbox/internal/ratelimit"
	"stompbox/internal/store"
	"strconv"
	"strings"
)

func (a *API) rooms(w http.ResponseWriter, r *http.Request, u store.User) error {
	rs, err := a.chat.Rooms(r.Context(), u)
	if err != nil {
		return err
	}
	return writeAPIJSON(w, http.StatusOK, apiList(rs))
}

func (a *API) createRoom(w http.ResponseWriter, r *http.Request, u store.User) error {
	var nr chat.NewRoom
	if err := decodeAPIJSON(w, r, MaxAPIBodyBytes, &nr); err != nil {
		return err
	}
	rm, err := a.chat.CreateRoom(r.Context(), u, nr)
	if err != nil {
		return err
	}
	return writeAPIJSON(w, http.StatusCreated, rm)
}

func (a *API) updateRoom(w http.ResponseWriter, r *http.Request, u store.User) error {
	id, err := roomPathID(r)
	if err != nil {
		return err
	}
	var up store.RoomUpdate
	if err := decodeAPIJSON(w, r, MaxAPIBodyBytes, &up); err != nil {
		return err
	}
	rm, err := a.chat.UpdateRoom(r.Context(), u, id, up)
	if err != nil {
		return err
	}
	return writeAPIJSON(w, http.StatusOK, rm)
}

func (a *API) join(w http.ResponseWriter, r *http.Request, u store.User) error {
	id, err := roomPathID(r)
	if err != nil {
		return err
	}
	if err := a.chat.Join(r.Context(), u, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) leave(w http.ResponseWriter, r *http.Request, u store.User) error {
	id, err := roomPathID(r)
	if err != nil {
		return err
	}
	if err := a.chat.Leave(r.Context(), u, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) addMember(w http.ResponseWriter, r *http.Request, u store.User) error {
	id, err := roomPathID(r)
	if err != nil {
		return err
	}
	var body struct {
		Username string `json:"username"`
	}
	if err := decodeAPIJSON(w, r, MaxAPIBodyBytes, &body); err != nil {
		return err
	}
	if err := a.chat.AddMember(r.Context(), u, id, body.Username); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// members serves GET /api/rooms/{id}/members: {"members":[…]}, each with
// username, displayName, and isAdmin, owner and online when true.
func (a *API) members(w http.ResponseWriter, r *http.Request, u store.User) error {
	id, err := roomPathID(r)
	if err != nil {
		return err
	}
	ms, err := a.chat.RoomMembers(r.Context(), u, id)
	if err != nil {
		return err
	}
	return writeAPIJSON(w, http.StatusOK, map[string][]chat.Member{"members": ms})
}

// removeMember serves DELETE /api/rooms/{id}/members/{username}: the
// room's owner or an administrator removes someone; 204 once it is
// committed, when that person's live subscriptions to the room have ended.
func (a *API) removeMember(w http.ResponseWriter, r *http.Request, u store.User) error {
	id, err := roomPathID(r)
	if err != nil {
		return err
	}
	if err := a.chat.RemoveMember(r.Context(), u, id, r.PathValue("username")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// messages serves GET /api/rooms/{id}/messages?before=ID|after=ID&limit=N:
// a page in ascending id order; without before/after, the newest page.
func (a *API) messages(w http.ResponseWriter, r *http.Request, u store.User) error {
	id, err := roomPathID(r)
	if err != nil {
		return err
	}
	before, hasBefore, err := queryNonNegative(r, "before")
	if err != nil {
		return err
	}
	after, hasAfter, err := queryNonNegative(r, "after")
	if err != nil {
		return err
	}
	limit, _, err := queryNonNegative(r, "limit")
	if err != nil {
		return err
	}
	var ms []store.StoredMessage
	switch {
	case hasBefore && hasAfter:
		return apperr.New(apperr.ErrBadRequest, "give before or after, not both")
	case hasAfter:
		ms, err = a.chat.MessagesSince(r.Context(), u, id, after, int(min(limit, chat.MaxHistoryLimit)))
	default:
		if hasBefore && before == 0 {
			return apperr.New(apperr.ErrBadRequest, "before must be a message id")
		}
		ms, err = a.chat.Messages(r.Context(), u, id, before, 0, int(min(limit, chat.MaxHistoryLimit)))
	}
	if err != nil {
		return err
	}
	return writeAPIJSON(w, http.StatusOK, apiList(ms))
}

// postMessage is the HTTP twin of a STOMP SEND: {"message":"…"} (type
// defaults to TALK) is stored, delivered to subscribers, and returned. It
// obeys the same limits: -user-send-rate (429 with Retry-After, counted
// before the body is read, as a SEND is counted before it is handled) and
// -max-message (413).
func (a *API) postMessage(w http.ResponseWriter, r *http.Request, u store.User) error {
	if err := a.allowSend(w, u); err != nil {
		return err
	}
	id, err := roomPathID(r)
	if err != nil {
		return err
	}
	var body struct {
		Type        string            `json:"type"`
		Message     string            `json:"message"`
		ReplyTo     int64             `json:"replyTo"`
		Attachments []json.RawMessage `json:"attachments"` // file ids, as in a STOMP SEND
	}
	if err := decodeAPIJSON(w, r, a.chat.MaxInputBytes(), &body); err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			// Only a message over the limit makes the body this large: say so, as STOMP does.
			return chat.MessageTooLongError{Max: a.chat.MaxRunes}
		}
		return err
	}
	typ := strings.ToUpper(body.Type)
	if typ == "" {
		typ = proto.MsgTalk
	}
	files, err := chat.ParseAttachmentIDs(body.Attachments)
	if err != nil {
		return err
	}
	m, err := a.chat.Post(r.Context(), u, chat.Input{Type: typ, RoomID: id, Message: body.Message, ReplyTo: body.ReplyTo,
		Attachments: files, IdempotencyKey: r.Header.Get(chat.IdempotencyHTTPHeader)})
	if err != nil {
		return err
	}
	return writeAPIJSON(w, http.StatusCreated, m)
}

// messagePathIDs parses {id} and {mid} of /api/rooms/{id}/messages/{mid}.
func messagePathIDs(r *http.Request) (roomID, msgID int64, err error) {
	if roomID, err = roomPathID(r); err != nil {
		return 0, 0, err
	}
	msgID, err = strconv.ParseInt(r.PathValue("mid"), 10, 64)
	if err != nil || msgID <= 0 {
		return 0, 0, apperr.ErrUnknownMessage
	}
	return roomID, msgID, nil
}

// editMessage serves PATCH /api/rooms/{id}/messages/{mid} with
// {"message":"new text"}: the HTTP twin of a SEND to /pub/chat/edit. It
// answers with the EDIT event that went to the room. Edits, deletions and
// reactions draw on the same -user-send-rate allowance as posts.
func (a *API) editMessage(w http.ResponseWriter, r *http.Request, u store.User) error {
	if err := a.allowSend(w, u); err != nil {
		return err
	}
	roomID, msgID, err := messagePathIDs(r)
	if err != nil {
		return err
	}
	var body struct {
		Message string `json:"message"`
	}
	if err := decodeAPIJSON(w, r, a.chat.MaxInputBytes(), &body); err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			return chat.MessageTooLongError{Max: a.chat.MaxRunes}
		}
		return err
	}
	ev, err := a.chat.Edit(r.Context(), u, roomID, msgID, body.Message)
	if err != nil {
		return err
	}
	return writeAPIJSON(w, http.StatusOK, ev)
}

// deleteMessage serves DELETE /api/rooms/{id}/messages/{mid}: 204 once the
// deletion is stored and published.
func (a *API) deleteMessage(w http.ResponseWriter, r *http.Request, u store.User) error {
	if err := a.allowSend(w, u); err != nil {
		return err
	}
	roomID, msgID, err := messagePathIDs(r)
	if err != nil {
		return err
	}
	if err := a.chat.Delete(r.Context(), u, roomID, msgID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// react serves PUT (add) and DELETE (remove) of
// /api/rooms/{id}/messages/{mid}/reactions/{emoji} (the emoji
// percent-encoded) and answers {"reactions":[…]}, the message's reactions
// after the change.
func (a *API) react(add bool) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, u store.User) error {
		if err := a.allowSend(w, u); err != nil {
			return err
		}
		roomID, msgID, err := messagePathIDs(r)
		if err != nil {
			return err
		}
		rs, err := a.chat.React(r.Context(), u, roomID, msgID, r.PathValue("emoji"), add)
		if err != nil {
			return err
		}
		return writeAPIJSON(w, http.StatusOK, map[string][]store.Reaction{"reactions": rs})
	}
}

// allowSend applies -user-send-rate to a write on behalf of u, with a
// Retry-After header when it refuses.
func (a *API) allowSend(w http.ResponseWriter, u store.User) error {
	if ok, wait := a.lim.AllowUserSend(u.Username); !ok {
		w.Header().Set("Retry-After", ratelimit.RetryAfterSeconds(wait))
		return ratelimit.ErrSendRateLimited
	}
	return nil
}

// markRead serves POST /api/rooms/{id}/read with {"id": lastReadMessageID}.
func (a *API) markRead(w http.ResponseWriter, r *http.Request, u store.User) error {
	id, err := roomPathID(r)
	if err != nil {
		return err
	}
	var body struct {
		ID int64 `json:"id"`
	}
	if err := decodeAPIJSON(w, r, MaxAPIBodyBytes, &body); err != nil {
		return err
	}
	if body.ID <= 0 {
		return apperr.New(apperr.ErrBadRequest, "id must be a message id")
	}
	if err := a.chat.MarkRead(r.Context(), u, id, body.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// export streams a room as one JSON document, as a download. Access is
// checked before the first byte, so errors still get a proper status.
func (a *API) export(w http.ResponseWriter, r *http.Request, u store.User) error {
	id, err := roomPathID(r)
	if err != nil {
		return err
	}
	if err := a.chat.CanRead(r.Context(), u, id); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="room-`+strconv.FormatInt(id, 10)+`.json"`)
	if err := a.chat.ExportRoom(r.Context(), u, id, w); err != nil {
		// The status line is sent; cut the response and log.
		a.log.Warn("export interrupted", "room", id, "err", err)
	}
	return nil
}

func (a *API) openDM(w http.ResponseWriter, r *http.Request, u store.User) error {
	rm, err := a.chat.OpenDM(r.Context(), u, r.PathValue("username"))
	if err != nil {
		return err
	}
	return writeAPIJSON(w, http.StatusOK, rm)
}

func (a *API) search(w http.ResponseWriter, r *http.Request, u store.User) error {
	ms, err := a.chat.Search(r.Context(), u, r.URL.Query().Get("q"))
	if err != nil {
		return err
	}
	return writeAPIJSON(w, http.StatusOK, apiList(ms))
}
