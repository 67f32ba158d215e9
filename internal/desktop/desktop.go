package desktop

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/inconshreveable/mousetrap"
)

// StartedByDoubleClick guesses whether a person started stompbox from a file
// manager rather than a shell. Then the data folder goes beside the
// executable (the working directory is the user's home or System32) and a
// browser is opened. On Windows the parent is Explorer (mousetrap checks).
// On macOS, Finder runs a Unix executable in Terminal from the home folder.
// Elsewhere, and whenever arguments were given, the answer is no.
func StartedByDoubleClick(args []string) bool {
	if len(args) > 0 {
		return false
	}
	switch runtime.GOOS {
	case "windows":
		return mousetrap.StartedByExplorer()
	case "darwin":
		home, err1 := os.UserHomeDir()
		wd, err2 := os.Getwd()
		exe, err3 := os.Executable()
		return err1 == nil && err2 == nil && err3 == nil && wd == home && filepath.Dir(exe) != wd
	}
	return false
}

// DataFolder is stompbox-data beside the executable when it was
// double-clicked, and name in the working directory otherwise.
func DataFolder(doubleClicked bool, name string) string {
	if doubleClicked {
		if exe, err := os.Executable(); err == nil {
			return filepath.Join(filepath.Dir(exe), name)
		}
	}
	return name
}

// OpenBrowser asks the desktop to open url. It does not wait for the browser.
func OpenBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	case "darwin":
		cmd = exec.Command("open", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("open browser: %w", err)
	}
	go cmd.Wait() // reap the launcher; it exits as soon as it has handed over
	return nil
}

// LANURLs lists the URLs under which other machines on the network can reach
// an HTTP server listening on addr (all interfaces), so that the log tells a
// Pi owner what to type on their laptop. It reads local interfaces only.
func LANURLs(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, "http://"+net.JoinHostPort(ipn.IP.String(), port)+"/")
	}
	return out
}
