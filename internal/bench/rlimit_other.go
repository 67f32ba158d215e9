//go:build !unix

package bench

// raiseFileLimit has nothing to raise where there is no RLIMIT_NOFILE
// (Windows); 0 means "unknown" in the report.
func raiseFileLimit() uint64 { return 0 }
