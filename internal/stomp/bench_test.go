package stomp_test

import (
	"bytes"
	"stompbox/internal/stomp"
	"stompbox/internal/stomp/stomptest"
	"strings"
	"testing"
)

// benchSend is a typical chat SEND from a js client: an application
// destination, JSON content-type, a receipt, and a 1 KiB JSON body.
func benchSend() []byte {
	body := `{"room":"general","type":"chat","text":"` + strings.Repeat("안녕하세요 hello ", 50) + `"}`
	f := stomptest.Frame(stomp.CmdSend, body, stomp.HdrDestination, "/app/chat.send", stomp.HdrContentType, "application/json;charset=UTF-8", stomp.HdrReceipt, "message-12")
	return stomp.AppendFrame(nil, f, stomp.V12)
}

// benchParse feeds in to p in chunks of chunk bytes (all at once if 0) per
// iteration and requires exactly one frame back.
func benchParse(b *testing.B, in []byte, chunk int) {
	p := stomp.NewParser(stomp.DefaultLimits())
	p.Version = stomp.V12
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		rest := in
		frames := 0
		for len(rest) > 0 {
			n := len(rest)
			if chunk > 0 {
				n = min(chunk, n)
			}
			p.Feed(rest[:n])
			rest = rest[n:]
			for {
				f, err := p.Next()
				if err != nil {
					b.Fatal(err)
				}
				if f == nil {
					break
				}
				frames++
			}
		}
		if frames != 1 {
			b.Fatalf("%d frames", frames)
		}
	}
}

func BenchmarkParseSend(b *testing.B) {
	in := benchSend()
	b.Run("one-chunk", func(b *testing.B) { benchParse(b, in, 0) })
	b.Run("chunks-512B", func(b *testing.B) { benchParse(b, in, 512) })
}

func BenchmarkParseContentLength32K(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 32<<10/16)
	in := stomp.AppendFrame(nil, stomptest.Frame(stomp.CmdSend, string(body), stomp.HdrDestination, "/topic/files", stomp.HdrContentType, "application/octet-stream"), stomp.V12)
	b.Run("one-chunk", func(b *testing.B) { benchParse(b, in, 0) })
	b.Run("chunks-4KiB", func(b *testing.B) { benchParse(b, in, 4<<10) })
}

// BenchmarkParseManySmall feeds one 64 KiB chunk, as one WebSocket message
// may be, holding 4,096 tiny frames: the cost per chunk should grow with its
// size, not with its size times its frame count.
func BenchmarkParseManySmall(b *testing.B) {
	one := []byte("ACK\nid:1234567\n\n\x00")
	in := bytes.Repeat(one, 64<<10/len(one))
	p := stomp.NewParser(stomp.DefaultLimits())
	p.Version = stomp.V12
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		p.Feed(in)
		for {
			f, err := p.Next()
			if err != nil {
				b.Fatal(err)
			}
			if f == nil {
				break
			}
		}
	}
}
