//go:build linux || darwin || freebsd

package files

import "syscall"

// statFS asks the kernel how much space the file system of dir has.
func statFS(dir string) (DiskSpace, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return DiskSpace{}, err
	}
	bs := uint64(st.Bsize)
	return DiskSpace{Free: uint64(st.Bavail) * bs, Total: uint64(st.Blocks) * bs}, nil
}
