package main

import (
	"context"
	"errors"
	"io"
)

// runSubcommandSockJS is replaced when the SockJS server lands.
func runSubcommandSockJS(ctx context.Context, args []string, stderr io.Writer) error {
	return errors.New("sockjs-testserver: not built yet")
}
