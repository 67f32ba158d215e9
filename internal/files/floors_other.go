//go:build !(linux || darwin || freebsd)

package files

// statFS cannot ask this platform (Windows, the other BSDs) without a new
// dependency: the free-space floors are off there, and -files-max-total
// must be given in MiB; the per-account quota still applies.
func statFS(string) (DiskSpace, error) { return DiskSpace{}, errSpaceUnknown }
