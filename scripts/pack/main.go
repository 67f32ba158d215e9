// Command pack writes one release archive for scripts/release.sh: a
// .tar.gz or a .zip (by the output's name) holding the given files in one
// folder. Every entry gets the same time and root ownership, and a mode
// from the file's executable bit (0755 or 0644), so the same inputs give
// the same bytes on any machine. It needs neither zip nor GNU tar.
//
//	go run ./scripts/pack -o stompbox-v1.2.0-linux-arm64.tar.gz \
//	    -dir stompbox-v1.2.0-linux-arm64 -time 2026-12-07T01:47:33Z \
//	    path/to/stompbox README.md LICENSE
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	out := flag.String("o", "", "archive to write, ending in .tar.gz or .zip")
	dir := flag.String("dir", "", "folder in the archive that holds the files")
	stamp := flag.String("time", "", "modification time of every entry, RFC 3339 (the commit's time)")
	flag.Parse()
	if err := pack(*out, *dir, *stamp, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "pack:", err)
		os.Exit(1)
	}
}

// entry is one file to archive.
type entry struct {
	src  string      // path on disk
	name string      // path in the archive
	mode fs.FileMode // 0755 or 0644
	size int64
}

func pack(out, dir, stamp string, files []string) (err error) {
	if out == "" || dir == "" || len(files) == 0 {
		return errors.New("usage: pack -o OUT.tar.gz|OUT.zip -dir DIR [-time RFC3339] FILE…")
	}
	mtime := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC) // the earliest time a zip entry holds
	if stamp != "" {
		if mtime, err = time.Parse(time.RFC3339, stamp); err != nil {
			return err
		}
	}
	var entries []entry
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", f)
		}
		mode := fs.FileMode(0o644)
		if fi.Mode()&0o111 != 0 {
			mode = 0o755
		}
		entries = append(entries, entry{f, path.Join(dir, filepath.Base(f)), mode, fi.Size()})
	}
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(out)
		}
	}()
	switch {
	case strings.HasSuffix(out, ".tar.gz"):
		return writeTarGz(w, entries, mtime)
	case strings.HasSuffix(out, ".zip"):
		return writeZip(w, entries, mtime)
	}
	return fmt.Errorf("%s: name must end in .tar.gz or .zip", out)
}

func writeTarGz(w io.Writer, entries []entry, mtime time.Time) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz) // gzip's header keeps no name and no time: reproducible
	for _, e := range entries {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     e.name,
			Mode:     int64(e.mode),
			Size:     e.size,
			ModTime:  mtime,
			Uname:    "root",
			Gname:    "root",
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if err := copyFile(tw, e.src); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeZip(w io.Writer, entries []entry, mtime time.Time) error {
	zw := zip.NewWriter(w)
	for _, e := range entries {
		hdr := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: mtime}
		hdr.SetMode(e.mode)
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		if err := copyFile(fw, e.src); err != nil {
			return err
		}
	}
	return zw.Close()
}

func copyFile(w io.Writer, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
