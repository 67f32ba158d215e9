package chat

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"stompbox/internal/apperr"
	"stompbox/internal/store"
	"sync"
	"time"
)

// Notification limits.
const (
	// maxPendingDelivered bounds the notifications handed over per
	// DeliverPending page; a user back from holiday gets them in pages.
	maxPendingDelivered = 200

	// webhookTimeout bounds one webhook POST: a slow receiver must not
	// hold a worker for long.
	webhookTimeout = 5 * time.Second

	// webhookQueueLen bounds POSTs waiting to go out. When it is full new
	// ones are dropped (and logged): webhooks are a courtesy and must
	// never slow the chat path.
	webhookQueueLen = 256

	// webhookWorkers is how many POSTs run at once.
	webhookWorkers = 2

	// maxWebhookURLLen keeps a URL a URL.
	maxWebhookURLLen = 2048
)

// notifyTarget is a user a TALK message should notify.
type notifyTarget struct {
	userID         int64
	username       string
	reason         string // reasonMention or reasonDM
	webhook        string // "" if none
	online         bool   // notified live, not stored
	notificationID int64  // set once stored
}

// mentionTargets finds the @mentioned users of a TALK message from u who
// can read the room (a mention must not leak a private room's text). The
// sender never notifies themself. Online users are marked so that they get
// a live notification instead of a stored one.
func (c *Service) mentionTargets(ctx context.Context, roomID int64, u store.User, body string) ([]notifyTarget, error) {
	var out []notifyTarget
	seen := map[int64]bool{u.ID: true}
	for _, name := range MentionedNames(body) {
		p, ok, err := c.St.MentionTarget(ctx, name, roomID)
		if err != nil {
			return nil, err
		}
		if !ok || seen[p.UserID] {
			continue // not a user who can read the room: just text with an @
		}
		seen[p.UserID] = true
		out = append(out, notifyTarget{userID: p.UserID, username: p.Username, reason: store.ReasonMention, webhook: p.Webhook, online: c.online(p.Username)})
	}
	return out, nil
}

// PendingNotifications returns u's undelivered notifications, oldest first
// (at most maxPendingDelivered).
func (c *Service) PendingNotifications(ctx context.Context, u store.User) ([]store.Notification, error) {
	return c.St.PendingNotifications(ctx, u.ID, maxPendingDelivered)
}

// MarkDelivered marks u's notifications up to and including upTo delivered.
func (c *Service) MarkDelivered(ctx context.Context, u store.User, upTo int64) error {
	return c.St.MarkDelivered(ctx, u.ID, upTo)
}

// DeliverPending hands u's stored notifications to Notify and marks them
// delivered; the broker calls it when a user connects. It returns how many
// went. Notify must not block (it enqueues), so a crash between Notify and
// the mark can at worst deliver some twice, never lose them.
func (c *Service) DeliverPending(ctx context.Context, u store.User) (int, error) {
	total := 0
	for {
		ns, err := c.PendingNotifications(ctx, u)
		if err != nil || len(ns) == 0 {
			return total, err
		}
		for _, n := range ns {
			c.notify(u.Username, notificationJSON(n))
		}
		if err := c.MarkDelivered(ctx, u, ns[len(ns)-1].ID); err != nil {
			return total, err
		}
		total += len(ns)
		if len(ns) < maxPendingDelivered {
			return total, nil
		}
	}
}

// SetWebhook sets (or, with "", clears) the URL u's offline notifications
// are POSTed to. Only http and https URLs to a target on the
// administrator's allow-list are accepted (webhookguard.go).
func (c *Service) SetWebhook(ctx context.Context, u store.User, rawURL string) error {
	if u.IsGuest {
		return apperr.New(apperr.ErrForbidden, "guests cannot set webhooks")
	}
	if rawURL != "" {
		if err := c.webhookAllow.checkURL(rawURL); err != nil { // webhookguard.go
			return err
		}
	}
	return c.St.SetWebhook(ctx, u.ID, rawURL)
}

// webhookSender POSTs notification JSON to users' webhook URLs in the
// background. enqueue never blocks: when the bounded queue is full the
// POST is dropped and logged. It owns its worker goroutines; Close cancels
// in-flight POSTs and waits for the workers.
type webhookSender struct {
	client *http.Client
	allow  webhookAllow // checked again as each POST goes: the list may have changed since the URL was set
	log    *slog.Logger
	queue  chan webhookJob // never closed; workers and senders select on ctx
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type webhookJob struct {
	url  string
	body []byte
}

func newWebhookSender(client *http.Client, allow webhookAllow, log *slog.Logger) *webhookSender {
	if client == nil {
		client = guardedWebhookClient()
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &webhookSender{client: client, allow: allow, log: log, queue: make(chan webhookJob, webhookQueueLen), ctx: ctx, cancel: cancel}
	for range webhookWorkers {
		w.wg.Go(w.run)
	}
	return w
}

// enqueue schedules a POST; it reports false if it was dropped.
func (w *webhookSender) enqueue(url string, body []byte) bool {
	if w.ctx.Err() != nil {
		return false
	}
	select {
	case w.queue <- webhookJob{url: url, body: body}:
		return true
	default:
		w.log.Warn("webhook queue full, notification dropped", "url", url)
		return false
	}
}

func (w *webhookSender) run() {
	for {
		select {
		case <-w.ctx.Done():
			return
		case j := <-w.queue:
			if err := w.post(j); err != nil {
				w.log.Warn("webhook failed", "url", j.url, "err", err)
			}
		}
	}
}

func (w *webhookSender) post(j webhookJob) error {
	if err := w.allow.stillAllows(j.url); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(w.ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, bytes.NewReader(j.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "stompbox-webhook")
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // let the connection be reused
	if resp.StatusCode >= 300 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// Close cancels in-flight POSTs, drops queued ones and waits for the workers.
func (w *webhookSender) Close() {
	w.cancel()
	w.wg.Wait()
}
