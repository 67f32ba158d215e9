package service

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
)

// Unit is the systemd unit for stompbox installed at /usr/local/bin: a
// Type=notify service with a watchdog, a dynamic user, its data in
// /var/lib/stompbox, and the sandboxing that a network server with one
// state directory can bear.
//
//go:embed stompbox.service
var Unit string

// ErrUsage is RunCommand's error for a command line it does not know; its
// text is the usage.
var ErrUsage = errors.New("usage: stompbox service print")

// RunCommand runs "stompbox service ARGS…": "print" writes Unit to stdout.
func RunCommand(args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "print" {
		return ErrUsage
	}
	_, err := fmt.Fprint(stdout, Unit)
	return err
}
