package chat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"stompbox/internal/apperr"
	"strings"
	"syscall"
	"time"
)

// webhookguard.go: where webhooks may go (issue 22). A user's webhook URL
// must name a target on the administrator's allow-list (-webhook-allow:
// host names, *.domain patterns, IP addresses, CIDR ranges); an empty list
// turns webhooks off. Whatever the list says, a webhook never reaches a
// loopback, link-local, multicast or unspecified address: the address
// actually dialed is checked (net.Dialer.Control), so a name that resolves
// to 127.0.0.1, or re-resolves there after it was set, is refused too.
// Redirects are not followed: a 3xx answer is the webhook's answer.

// Webhook refusals.
var (
	errWebhooksOff       = apperr.New(apperr.ErrForbidden, "webhooks are off on this server: an administrator allows targets with -webhook-allow")
	errWebhookNotAllowed = apperr.New(apperr.ErrForbidden, "this webhook target is not on the server's allow-list")
	errWebhookLocal      = apperr.New(apperr.ErrBadRequest, "a webhook must not point at a loopback, link-local or unspecified address")
	errWebhookDialed     = errors.New("webhook address refused")
)

// webhookAllow is the administrator's allow-list.
type webhookAllow struct {
	names    []string       // exact host names, lower case
	suffixes []string       // from "*.example.com": ".example.com"
	prefixes []netip.Prefix // IP addresses (as /32 or /128) and CIDR ranges
}

// parseWebhookAllow reads the -webhook-allow entries.
func parseWebhookAllow(entries []string) (webhookAllow, error) {
	var a webhookAllow
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
		case strings.HasPrefix(e, "*."):
			a.suffixes = append(a.suffixes, e[1:])
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return a, fmt.Errorf("webhook allow-list: %q: %w", e, err)
			}
			a.prefixes = append(a.prefixes, p.Masked())
		default:
			if ip, err := netip.ParseAddr(e); err == nil {
				a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
			} else {
				a.names = append(a.names, strings.TrimSuffix(e, "."))
			}
		}
	}
	return a, nil
}

func (a webhookAllow) empty() bool {
	return len(a.names) == 0 && len(a.suffixes) == 0 && len(a.prefixes) == 0
}

// allowsHost reports whether a URL's host (no port) is on the list: a
// listed name or domain, or an IP address in a listed range.
func (a webhookAllow) allowsHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return a.allowsIP(ip)
	}
	for _, n := range a.names {
		if host == n {
			return true
		}
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(host, s) && len(host) > len(s) {
			return true
		}
	}
	return false
}

func (a webhookAllow) allowsIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// forbiddenIP reports whether a webhook must never reach ip.
func forbiddenIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsValid() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified()
}

// checkWebhookURL checks a URL against the rules: http or https, a host,
// on the allow-list, not a forbidden address written out.
func (a webhookAllow) checkURL(raw string) error {
	p, err := url.Parse(raw)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil || len(raw) > maxWebhookURLLen {
		return apperr.New(apperr.ErrBadRequest, "webhook must be an http or https URL")
	}
	if a.empty() {
		return errWebhooksOff
	}
	host := p.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil && forbiddenIP(ip) {
		return errWebhookLocal
	}
	if h := strings.TrimSuffix(strings.ToLower(host), "."); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return errWebhookLocal
	}
	if !a.allowsHost(host) {
		return errWebhookNotAllowed
	}
	return nil
}

// stillAllows checks, as a POST goes, that the URL's host is still on the
// list (it may have changed since the URL was set). The addresses are
// the dialer's to check.
func (a webhookAllow) stillAllows(raw string) error {
	p, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("webhook URL: %w", err)
	}
	if a.empty() {
		return errWebhooksOff
	}
	if !a.allowsHost(p.Hostname()) {
		return errWebhookNotAllowed
	}
	return nil
}

// guardedWebhookClient is the client webhooks go out with: it dials no
// forbidden address, and follows no redirect.
func guardedWebhookClient() *http.Client { return newWebhookClient(forbiddenIP) }

// newWebhookClient is a webhook client that refuses to dial an address
// for which refuse is true, checked on the address actually dialed
// (after name resolution), and follows no redirect.
func newWebhookClient(refuse func(netip.Addr) bool) *http.Client {
	d := &net.Dialer{Timeout: webhookTimeout, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", errWebhookDialed, address)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || refuse(ip) {
			return fmt.Errorf("%w: %s", errWebhookDialed, address)
		}
		return nil
	}}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		Proxy:                 nil, // a proxy would dial for us, past the check
		TLSHandshakeTimeout:   webhookTimeout,
		ResponseHeaderTimeout: webhookTimeout,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{Timeout: webhookTimeout, Transport: tr, CheckRedirect: noRedirects}
}

// noRedirects makes a client return a redirect as the answer.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
