package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"stompbox/internal/apperr"
	"stompbox/internal/proto"
	"stompbox/internal/store"
)

// store checks the room, writes m (plus a membership when posting makes u
// a member, plus notifications for offline targets) in one group-committed
// transaction as a chatPostOp, and publishes it on commit. dedupKey, when
// not empty, is the op's key for the cluster log's duplicate detection.
//
// The room check runs inside the transaction rather than as a read before
// it: the decision and the insert see the same state, and a send costs no
// separate read transaction. A member's send to a room that is neither
// archived nor a DM, with no mentions and no attachments, is checked and
// stored by one statement (sqlInsertAsMember); every other send takes the
// full path, which also checks and attaches the files ids (the sender's
// own unsent uploads to this room, else errBadAttachment). A refusal is
// recorded, not returned, so the transaction of the other senders in the
// group goes on undisturbed.
//
// Who is online is this node's knowledge, so in a cluster it is decided
// here, before the op is submitted, and carried in it (chatPostOp.Online):
// every node then stores the same notifications. Webhooks go out from this
// node only, after the commit.
func (c *Service) store(ctx context.Context, m store.StoredMessage, mentions []notifyTarget, files []int64, dedupKey string) (store.StoredMessage, error) {
	op := &PostOp{Type: m.Type, RoomID: m.RoomID, UserID: m.UserID, Sender: m.Sender, Message: m.Message, ReplyTo: m.ReplyTo, Files: files, online: c.online}
	for _, t := range mentions {
		op.Mentions = append(op.Mentions, PostMention{UserID: t.userID, Username: t.username, Webhook: t.webhook})
		if t.online {
			op.Online = append(op.Online, t.username)
		}
	}
	if c.St.Replicated() && m.Type == proto.MsgTalk {
		// The peer is read before the write, so the membership may change
		// in between; a peer who left gets no notification either way
		// (Apply reads the members again), and one who joined is offline.
		peers, err := c.St.DmPeerNames(ctx, m.RoomID, m.UserID)
		if err != nil {
			return store.StoredMessage{}, fmt.Errorf("post to room %d: %w", m.RoomID, err)
		}
		for _, name := range peers {
			if c.online(name) && !slices.Contains(op.Online, name) {
				op.Online = append(op.Online, name)
			}
		}
	}
	if err := c.St.RunKeyed(ctx, op, dedupKey); err != nil {
		return store.StoredMessage{}, fmt.Errorf("post to room %d: %w", m.RoomID, err)
	}
	if op.refused != nil {
		return store.StoredMessage{}, op.refused
	}
	m = op.msg
	for _, t := range op.stored {
		if t.webhook != "" {
			c.webhooks.enqueue(t.webhook, notificationJSON(store.Notification{ID: t.notificationID, Reason: t.reason, CreatedAt: m.CreatedAt, Message: m}))
		}
	}
	return m, nil
}

// PostOp stores one chat message: a TALK, or the ENTER or LEAVE of a
// post or a Join (chatService.store). Everything the caller decided (the
// text, including the server's ENTER/LEAVE text in its language, the
// mention targets, who is online) is in its fields.
type PostOp struct {
	Type     string        `json:"type"`
	RoomID   int64         `json:"room"`
	UserID   int64         `json:"user"`
	Sender   string        `json:"sender"`
	Message  string        `json:"msg"`
	ReplyTo  int64         `json:"replyTo,omitempty"`
	Files    []int64       `json:"files,omitempty"`    // attachments: the sender's unsent uploads to the room
	Mentions []PostMention `json:"mentions,omitempty"` // @mentioned users who can read the room, sender excluded
	// Online are the usernames notified live rather than by a stored
	// notification: the online mention targets always, and in a cluster
	// the DM peer when online. On a single node the DM peer is looked up
	// when the op is applied, as it always was.
	Online []string `json:"online,omitempty"`
	// online is the submitting chat service's presence: on a single node
	// the DM peer is looked up when the op is applied. nil in an op
	// decoded from the log.
	online func(username string) bool

	msg     store.StoredMessage // the stored message, with its id
	refused error               // why the room refused it, if it did
	targets []notifyTarget      // DM peer and mentions: whom it notifies
	stored  []notifyTarget      // the offline ones, with their stored notification ids
}

// PostMention is a mention target as a chatPostOp carries it.
type PostMention struct {
	UserID   int64  `json:"id"`
	Username string `json:"name"`
	Webhook  string `json:"webhook,omitempty"` // for the submitting node's webhook, after the commit
}

// A resent post is answered with its original's message.
var _ store.ResultLookup = (*PostOp)(nil)

func (*PostOp) OpKind() string { return "chat-post" }

func (o *PostOp) Apply(e *store.Tx) error {
	o.msg = store.StoredMessage{Type: o.Type, RoomID: o.RoomID, Sender: o.Sender, UserID: o.UserID, Message: o.Message, ReplyTo: o.ReplyTo}
	o.refused, o.targets, o.stored = nil, o.targets[:0], o.stored[:0]
	m := &o.msg
	if len(o.Mentions) == 0 && m.ReplyTo == 0 && len(o.Files) == 0 {
		// The common case, one statement; mentions may need
		// notifications stored in the same transaction, and a
		// reply's original is checked once the room is.
		if done, err := e.InsertAsMember(m); done || err != nil {
			return err
		}
	}
	r, err := e.PostAccess(m.RoomID, m.UserID)
	switch {
	case errors.Is(err, apperr.ErrUnknownRoom):
		o.refused = err
	case err != nil:
		return err
	case r.Archived:
		o.refused = apperr.ErrRoomArchived
	case r.Kind != store.RoomPublic && !r.Member:
		o.refused = apperr.ErrNotMember
	}
	if o.refused == nil {
		if err := e.CheckAttachable(m, o.Files); errors.Is(err, store.ErrBadAttachment) {
			o.refused = err
		} else if err != nil {
			return err
		}
	}
	if o.refused != nil {
		return nil
	}
	if m.ReplyTo != 0 {
		if m.Reply, err = e.ReplyTarget(m.RoomID, m.ReplyTo); err != nil {
			if apperr.IsClientError(err) {
				o.refused = err
				return nil
			}
			return err
		}
	}
	if r.Kind == store.RoomDM && m.Type == proto.MsgTalk {
		peers, err := e.DmPeers(m.RoomID, m.UserID)
		if err != nil {
			return err
		}
		for _, p := range peers {
			o.targets = append(o.targets, notifyTarget{userID: p.UserID, username: p.Username, reason: store.ReasonDM,
				webhook: p.Webhook, online: o.peerOnline(e, p.Username)})
		}
	}
	for _, t := range o.Mentions {
		if !slices.ContainsFunc(o.targets, func(x notifyTarget) bool { return x.userID == t.UserID }) {
			o.targets = append(o.targets, notifyTarget{userID: t.UserID, username: t.Username, reason: store.ReasonMention,
				webhook: t.Webhook, online: slices.Contains(o.Online, t.Username)})
		}
	}
	if err := e.InsertMessage(m); err != nil {
		return err
	}
	if err := e.AttachFiles(m, o.Files); err != nil {
		return err
	}
	if r.Kind == store.RoomPublic && !r.Member && m.Type != proto.MsgLeave {
		if _, err := e.Join(m.RoomID, m.UserID); err != nil {
			return err
		}
	}
	for _, t := range o.targets {
		if t.online {
			continue
		}
		if t.notificationID, err = e.InsertNotification(t.userID, m.ID, t.reason); err != nil {
			return err
		}
		o.stored = append(o.stored, t)
	}
	return nil
}

// peerOnline reports whether the DM peer called name is notified live.
// From the cluster log only Online counts: the submitting node decided.
// On a single node the peer is looked up now, inside the transaction, as
// before ops existed.
func (o *PostOp) peerOnline(e *store.Tx, name string) bool {
	if e.Replay || o.online == nil {
		return slices.Contains(o.Online, name)
	}
	return o.online(name)
}

// committed publishes the message and the live notifications to this
// node's clients.
func (o *PostOp) committed(c *Service) {
	if o.refused != nil {
		return
	}
	m := o.msg
	c.deliver(m.RoomID, m.ID, m.JSON())
	for _, t := range o.targets {
		if t.online {
			c.notify(t.username, notificationJSON(store.Notification{Reason: t.reason, CreatedAt: m.CreatedAt, Message: m}))
		}
	}
}

// LookupResult reads back the message a resend's original stored, when
// the original was applied too long ago for the log to remember its
// result (resultLookup). An original the room refused, or one deleted
// since, answers as refused: the resend stored nothing either.
func (o *PostOp) LookupResult(ctx context.Context, st *store.Store, at int64) error {
	id, ok, err := st.PostedAt(ctx, o.RoomID, o.UserID, o.Type, o.Message, at)
	if err != nil {
		return fmt.Errorf("original of a resent post: %w", err)
	}
	if !ok {
		o.refused = apperr.ErrUnknownMessage
		return nil
	}
	ms, err := st.MessagesAfter(ctx, o.RoomID, id-1, 1)
	if err != nil {
		return fmt.Errorf("original of a resent post: %w", err)
	}
	if len(ms) == 0 || ms[0].ID != id {
		o.refused = apperr.ErrUnknownMessage
		return nil
	}
	o.msg = ms[0]
	return nil
}
