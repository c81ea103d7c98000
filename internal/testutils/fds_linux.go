//go:build linux

package testutils

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// RunWithLeakCheck runs the package's tests and returns the exit code for
// os.Exit, turning a passing run into a failing one when the tests left file
// descriptors open that were not open before them. BPF objects are file
// descriptors too (anon_inode:bpf-prog, bpf-map, bpf_link), so this also
// catches programs, maps and links that a test forgot to close. Use it from
// TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testutils.RunWithLeakCheck(m)) }
func RunWithLeakCheck(m *testing.M) int {
	before, err := openFDs()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testutils: fd leak check disabled: %v\n", err)
		return m.Run()
	}
	code := m.Run()
	after, err := openFDs()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testutils: fd leak check: %v\n", err)
		return code
	}
	leaked := leakedFDs(before, after)
	if len(leaked) == 0 {
		return code
	}
	reportLeaks(os.Stderr, leaked)
	if code == 0 {
		code = 1
	}
	return code
}

// fdInfo is an open descriptor and what it refers to (the /proc/self/fd link).
type fdInfo struct {
	fd     int
	target string
}

// openFDs lists this process's open file descriptors.
func openFDs() (map[int]string, error) {
	const dir = "/proc/self/fd"
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("list open fds: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list open fds: %w", err)
	}
	fds := make(map[int]string, len(names))
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd == int(f.Fd()) {
			continue
		}
		target, err := os.Readlink(dir + "/" + name)
		if err != nil {
			continue // closed meanwhile, e.g. by another goroutine
		}
		fds[fd] = target
	}
	return fds, nil
}

// leakedFDs returns the descriptors in after that were not in before,
// ignoring the ones the Go runtime opens on first use and keeps for the life
// of the process (the netpoller's epoll instance and its wakeup eventfd).
func leakedFDs(before, after map[int]string) []fdInfo {
	var leaked []fdInfo
	for fd, target := range after {
		if old, ok := before[fd]; ok && old == target {
			continue
		}
		if isRuntimeFD(target) {
			continue
		}
		leaked = append(leaked, fdInfo{fd: fd, target: target})
	}
	sort.Slice(leaked, func(i, j int) bool { return leaked[i].fd < leaked[j].fd })
	return leaked
}

func isRuntimeFD(target string) bool {
	switch target {
	case "anon_inode:[eventpoll]", "anon_inode:[eventfd]":
		return true
	}
	return false
}

func reportLeaks(w io.Writer, leaked []fdInfo) {
	var b strings.Builder
	fmt.Fprintf(&b, "testutils: the tests leaked %d file descriptor(s):\n", len(leaked))
	for _, l := range leaked {
		fmt.Fprintf(&b, "\tfd %d -> %s\n", l.fd, l.target)
	}
	fmt.Fprint(w, b.String())
}
