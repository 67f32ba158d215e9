package sockjsframe

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// SockJS frames the server sends (sockjs-protocol 0.3, "Framing accepted by
// the client"). Each transport wraps them in its own envelope (a newline for
// xhr, "data: " for eventsource, a <script> call for htmlfile and jsonp).
var (
	OpenFrame      = []byte("o") // the session is established
	HeartbeatFrame = []byte("h") // keeps proxies from timing out an idle connection
)

// Close reasons the protocol names (sockjs-protocol 0.3, "Handling close").
const (
	CodeAnotherConnection   = 2010 // a second receiver tried to attach to a session
	ReasonAnotherConnection = "Another connection still open"
	ReasonGoAway            = "Go away!"               // with closeSockJSGoAway
	ReasonInterrupted       = "Connection interrupted" // with closeProtocol: the receiver vanished mid-poll
	ReasonBrokenFraming     = "Broken framing."        // with closeProtocol: undecodable WebSocket message
	ReasonSlowConsumer      = "Slow consumer"          // with closePolicy: outbound queue over its bound
	ReasonNormal            = "Normal closure"         // with closeNormal: the application ended the session
)

// Errors from decoding what a client sent; the send handlers turn them into
// the exact 500 bodies the suite checks.
var (
	ErrPayloadExpected  = errors.New("sockjs: payload expected")
	errSockJSBrokenJSON = errors.New("sockjs: broken JSON encoding")
)

// CloseFrame returns c[code,"reason"].
func CloseFrame(code int, reason string) []byte {
	b := append([]byte("c["), strconv.Itoa(code)...)
	b = append(b, ',')
	b = AppendString(b, reason, false)
	return append(b, ']')
}

// AppendArray appends the array frame a["m1","m2",…] for msgs. With
// escaped set the messages are already JSON string content
// (appendSockJSContent, html off), as the session writer hands them over.
// The array is the same for every transport: htmlfile and jsonp escape the
// whole frame again for their script.
func AppendArray(dst []byte, msgs [][]byte, escaped bool) []byte {
	dst = append(dst, 'a', '[')
	for i, m := range msgs {
		if i > 0 {
			dst = append(dst, ',')
		}
		if escaped {
			dst = append(append(append(dst, '"'), m...), '"')
		} else {
			dst = AppendString(dst, m, false)
		}
	}
	return append(dst, ']')
}

// AppendString appends s as a JSON string literal in the form
// sockjs-node produces: JSON.stringify's escapes (\" \\ \b \f \n \r \t and
// \u00xx for other controls, lower-case hex), plus \uxxxx for every code
// point that browsers or proxies mangle in transit (sockjsEscapes). Invalid
// UTF-8 becomes \ufffd, so the output is always valid JSON and valid UTF-8.
// With html set it also escapes < > & so the literal is safe inside an HTML
// <script> element (htmlfile) or a JSONP body: a chat message containing
// "</script>" must not end the script.
func AppendString[T string | []byte](dst []byte, s T, html bool) []byte {
	dst = append(dst, '"')
	dst = AppendContent(dst, s, html)
	return append(dst, '"')
}

// AppendContent appends what appendSockJSString puts between the
// quotes. Escaping works character by character, so the content of a
// concatenation is the concatenation of the contents, as long as no
// multi-byte character is split: the writer escapes a MESSAGE's own headers
// and appends its shared tail, escaped once per publish (message.encodedJSON).
func AppendContent[T string | []byte](dst []byte, s T, html bool) []byte {
	safe := &sockjsPlainSafe
	if html {
		safe = &sockjsHTMLSafe
	}
	for i := 0; i < len(s); {
		// Copy a run of printable ASCII that needs no escape in one go.
		start := i
		for i < len(s) && safe[s[i]] {
			i++
		}
		dst = append(dst, s[start:i]...)
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == '"':
				dst = append(dst, '\\', '"')
			case c == '\\':
				dst = append(dst, '\\', '\\')
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c == '\b':
				dst = append(dst, '\\', 'b')
			case c == '\f':
				dst = append(dst, '\\', 'f')
			default: // other controls, DEL, and < > & in HTML mode
				dst = appendUnicodeEscape(dst, rune(c))
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = appendUnicodeEscape(dst, utf8.RuneError)
		case sockjsEscapes(r):
			dst = appendUnicodeEscape(dst, r)
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// sockjsPlainSafe and sockjsHTMLSafe mark the bytes that appendSockJSString
// copies as they are: printable ASCII but " and \, and in HTML mode but
// < > & as well: one table lookup per byte instead of a chain of
// comparisons (BenchmarkSockJSEncodeArray 1,336-1,585 -> 815-986 ns/op, with
// the string copy of each batch gone too).
var sockjsPlainSafe, sockjsHTMLSafe = func() (plain, html [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		plain[c] = c != '"' && c != '\\'
		html[c] = plain[c] && c != '<' && c != '>' && c != '&'
	}
	return plain, html
}()

// sockjsEscapes reports whether the server must send r as \uxxxx. The set is
// the union of sockjs-node's server-side list (which the suite's
// JSONEncoding.test_xhr_server_encodes checks exactly: U+200C–U+200F,
// U+2028–U+202F, U+2060–U+206F, U+FFF0–U+FFFF) and json2.js's "escapable"
// list (C1 controls, soft hyphen, Arabic and Syriac format characters, Khmer
// vowels, BOM), which browsers are known to drop or rewrite. Surrogates
// cannot occur: Go strings decode them as invalid UTF-8, sent as \ufffd.
func sockjsEscapes(r rune) bool {
	switch {
	case r <= 0x1f, r >= 0x7f && r <= 0x9f, r == 0xad:
		return true
	case r >= 0x600 && r <= 0x604, r == 0x70f, r == 0x17b4, r == 0x17b5:
		return true
	case r >= 0x200c && r <= 0x200f, r >= 0x2028 && r <= 0x202f, r >= 0x2060 && r <= 0x206f:
		return true
	case r == 0xfeff, r >= 0xfff0 && r <= 0xffff:
		return true
	}
	return false
}

func appendUnicodeEscape(dst []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}

// DecodeMessages decodes the body of xhr_send or jsonp_send: a JSON
// array of strings. An empty body (after JSON whitespace) is
// errSockJSPayloadExpected; anything else that is not an array of strings is
// errSockJSBrokenJSON. "[]" is valid and yields no messages (client
// heart-beat).
func DecodeMessages(p []byte) ([]string, error) {
	p = TrimJSONSpace(p)
	if len(p) == 0 {
		return nil, ErrPayloadExpected
	}
	if p[0] != '[' {
		return nil, errSockJSBrokenJSON
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(p, &raw); err != nil {
		return nil, errSockJSBrokenJSON
	}
	msgs := make([]string, 0, len(raw))
	for _, r := range raw {
		m, err := decodeSockJSString(r)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// DecodeWebSocket decodes one message of the framed WebSocket
// transport. sockjs-client sends an array of strings; a bare JSON string is
// accepted too (sockjs-node does). Empty messages carry nothing and yield no
// messages, as the suite's Websocket.test_empty_frame requires.
func DecodeWebSocket(p []byte) ([]string, error) {
	p = TrimJSONSpace(p)
	if len(p) == 0 {
		return nil, nil
	}
	if p[0] == '[' {
		return DecodeMessages(p)
	}
	m, err := decodeSockJSString(p)
	if err != nil {
		return nil, err
	}
	return []string{m}, nil
}

// decodeSockJSString decodes one JSON string literal, rejecting null and
// every other JSON type (json.Unmarshal would leave the string empty).
func decodeSockJSString(p []byte) (string, error) {
	p = TrimJSONSpace(p)
	if len(p) == 0 || p[0] != '"' {
		return "", errSockJSBrokenJSON
	}
	var m string
	if err := json.Unmarshal(p, &m); err != nil {
		return "", errSockJSBrokenJSON
	}
	return m, nil
}

// TrimJSONSpace trims JSON's insignificant whitespace (RFC 8259 §2), not
// Unicode's, so a message cannot be accepted here and refused by the parser.
func TrimJSONSpace(p []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(p) > 0 && isSpace(p[0]) {
		p = p[1:]
	}
	for len(p) > 0 && isSpace(p[len(p)-1]) {
		p = p[:len(p)-1]
	}
	return p
}
