//go:build linux

package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain fails the package's tests when they leave file descriptors open:
// sockets, memfds and inotify instances are what this package handles.
func TestMain(m *testing.M) {
	before := openFDs()
	code := m.Run()
	if code == 0 {
		for fd, target := range openFDs() {
			if before[fd] != target {
				fmt.Fprintf(os.Stderr, "leaked file descriptor %s -> %s\n", fd, target)
				code = 1
			}
		}
	}
	os.Exit(code)
}

func openFDs() map[string]string {
	fds := map[string]string{}
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the descriptor ReadDir itself used
		}
		// The Go runtime opens its poller lazily and keeps it.
		if strings.Contains(target, "eventpoll") || strings.Contains(target, "eventfd") {
			continue
		}
		fds[e.Name()] = target
	}
	return fds
}
