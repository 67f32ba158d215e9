//go:build unix

package bench

import "syscall"

// raiseFileLimit raises RLIMIT_NOFILE as far as allowed: to benchMaxFiles if
// the process may raise its hard limit, else to the hard limit. It returns
// the soft limit in force afterwards.
func raiseFileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	want := syscall.Rlimit{Cur: benchMaxFiles, Max: max(r.Max, benchMaxFiles)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		want = syscall.Rlimit{Cur: r.Max, Max: r.Max}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
			return r.Cur
		}
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	return r.Cur
}
