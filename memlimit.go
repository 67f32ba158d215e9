package main

import (
	"log/slog"
	"runtime/debug"
)

// applyMemoryLimit gives the Go runtime a soft memory limit of mib MiB
// (-memory-limit), the same as GOMEMLIMIT. With the default garbage
// collector setting the heap grows to about twice what is live before a
// collection, so on a Raspberry Pi with many idle browsers half of
// stompbox's resident memory is garbage waiting; under a limit the
// collector runs earlier instead. The runtime caps the collector's CPU at
// about half when the limit is too low for what is live, so a limit set too
// tight costs CPU, never a crash. Zero leaves the runtime's own setting
// (GOMEMLIMIT from the environment, or none). It returns the previous limit.
func applyMemoryLimit(mib int, log *slog.Logger) int64 {
	if mib <= 0 {
		return debug.SetMemoryLimit(-1) // -1 reads without changing
	}
	prev := debug.SetMemoryLimit(int64(mib) << 20)
	log.Info("memory limit set", "mib", mib)
	return prev
}
