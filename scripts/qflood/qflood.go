//go:build ignore

// qflood is issue 22's anonymous /queue/ flood (60 KB SENDs to fresh
// queue names, reconnecting after each ERROR) and its STOMP password
// guesses, against a stompbox on loopback; scripts/qflood.sh runs it.
// Run: go run scripts/qflood/qflood.go -mode flood|guess …
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

type conn struct {
	c net.Conn
	r *bufio.Reader
}

func dial(addr, local string, hdrs ...string) (*conn, string, string) {
	d := net.Dialer{}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		panic(err)
	}
	k := &conn{c, bufio.NewReaderSize(c, 64<<10)}
	k.write("CONNECT", "", append([]string{"accept-version:1.2", "host:x", "heart-beat:0,0"}, hdrs...)...)
	cmd, msg := k.read()
	return k, cmd, msg
}

func (k *conn) write(cmd, body string, hdrs ...string) {
	var b strings.Builder
	b.WriteString(cmd + "\n")
	for _, h := range hdrs {
		b.WriteString(h + "\n")
	}
	if body != "" {
		b.WriteString("content-length:" + strconv.Itoa(len(body)) + "\n")
	}
	b.WriteString("\n" + body + "\x00")
	k.c.Write([]byte(b.String()))
}

// read returns the next frame's command and its message header.
func (k *conn) read() (string, string) {
	k.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		s, err := k.r.ReadString(0)
		if err != nil {
			return "EOF", err.Error()
		}
		s = strings.TrimLeft(s, "\r\n")
		if s == "" || s == "\x00" {
			continue
		}
		lines := strings.Split(s, "\n")
		msg := ""
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "message:") {
				msg = strings.TrimPrefix(l, "message:")
			}
			if l == "" {
				break
			}
		}
		return lines[0], msg
	}
}

func rss(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	return "?"
}

func main() {
	addr := flag.String("addr", "127.0.0.1:61613", "STOMP TCP address")
	pid := flag.Int("pid", 0, "server pid for RSS")
	mode := flag.String("mode", "flood", "flood or guess")
	n := flag.Int("n", 4000, "SENDs (flood) or guesses (guess)")
	user := flag.String("user", "kim", "account (guess)")
	pass := flag.String("pass", "", "owner's password (guess)")
	after := flag.Duration("after", 10*time.Second, "how long after the flood to read RSS again")
	flag.Parse()
	switch *mode {
	case "flood":
		fmt.Println("RSS before:", rss(*pid))
		body := strings.Repeat("x", 60<<10)
		receipts, errs := 0, map[string]int{}
		k, cmd, msg := dial(*addr, "")
		if cmd != "CONNECTED" {
			panic(cmd + " " + msg)
		}
		start := time.Now()
		for i := range *n {
			k.write("SEND", body, "destination:/queue/junk-"+strconv.Itoa(i), "receipt:r"+strconv.Itoa(i))
			switch cmd, msg := k.read(); cmd {
			case "RECEIPT":
				receipts++
			default:
				errs[cmd+" "+msg]++
				k.c.Close()
				k, _, _ = dial(*addr, "")
			}
		}
		k.c.Close()
		fmt.Printf("%d SENDs in %v: %d receipted, errors %v\n", *n, time.Since(start).Round(time.Millisecond), receipts, errs)
		fmt.Println("RSS after the flood:", rss(*pid))
		time.Sleep(*after)
		fmt.Printf("RSS %v after every connection closed: %s\n", *after, rss(*pid))
	case "guess":
		answers := map[string]int{}
		start := time.Now()
		for range *n {
			k, cmd, msg := dial(*addr, "127.0.0.1", "login:"+*user, "passcode:wrong-guess")
			answers[cmd+" "+msg]++
			k.c.Close()
		}
		fmt.Printf("%d guesses from 127.0.0.1 in %v: %v\n", *n, time.Since(start).Round(time.Millisecond), answers)
		for _, local := range []string{"127.0.0.1", "127.0.0.2"} {
			k, cmd, msg := dial(*addr, local, "login:"+*user, "passcode:"+*pass)
			fmt.Printf("owner's right password from %s: %s %s\n", local, cmd, msg)
			k.c.Close()
		}
	}
}
