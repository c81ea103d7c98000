// Package proctree remembers the live processes of the host (executable,
// parent), fed by exec and exit events and seeded from /proc, so that logs
// and alerts can name a process's program and its parent's after the
// process is gone from /proc or has exec'd something else. It is bounded:
// when full, the longest-unseen process makes room, and that is counted.
package proctree

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"github.com/kubearmor/kubearmor-host/internal/lru"
)

// Proc is what the tree knows of a process.
type Proc struct {
	PID, PPID uint32
	Exe       string
}

// Tree is a bounded process table. It is not safe for concurrent use: one
// goroutine (the daemon's telemetry consumer) owns it.
type Tree struct {
	procs *lru.Map[uint32, Proc]
	proc  string // procfs root, for processes not seen yet
}

// New returns a tree of at most max processes that looks up the unknown
// under procRoot ("/proc").
func New(max int, procRoot string) *Tree {
	return &Tree{procs: lru.New[uint32, Proc](max), proc: procRoot}
}

// Seed adds every process in procfs now.
func (t *Tree) Seed() {
	entries, err := os.ReadDir(t.proc)
	if err != nil {
		return
	}
	for _, ent := range entries {
		pid, err := strconv.ParseUint(ent.Name(), 10, 32)
		if err != nil {
			continue
		}
		if p, ok := t.read(uint32(pid)); ok {
			t.procs.Put(p.PID, p)
		}
	}
}

// Exec records that pid, a child of ppid, now runs exe.
func (t *Tree) Exec(pid, ppid uint32, exe string) {
	t.procs.Put(pid, Proc{PID: pid, PPID: ppid, Exe: exe})
}

// Exit forgets pid.
func (t *Tree) Exit(pid uint32) { t.procs.Delete(pid) }

// Lookup returns what is known of pid: from the table, or else from procfs
// (a process forked before the tree saw it), which is then remembered.
func (t *Tree) Lookup(pid uint32) (Proc, bool) {
	if p, ok := t.procs.Get(pid); ok {
		return p, true
	}
	p, ok := t.read(pid)
	if ok {
		t.procs.Put(pid, p)
	}
	return p, ok
}

// Len is the number of processes known; Evicted how many were dropped to
// stay within bounds.
func (t *Tree) Len() int        { return t.procs.Len() }
func (t *Tree) Evicted() uint64 { return t.procs.Evicted() }

// read takes a process from procfs: kernel threads have no exe and are
// left out.
func (t *Tree) read(pid uint32) (Proc, bool) {
	dir := t.proc + "/" + strconv.FormatUint(uint64(pid), 10)
	exe, err := os.Readlink(dir + "/exe")
	if err != nil {
		return Proc{}, false
	}
	p := Proc{PID: pid, Exe: exe}
	if b, err := os.ReadFile(dir + "/stat"); err == nil {
		p.PPID = ppidFromStat(b)
	}
	return p, true
}

// ppidFromStat reads field 4 of /proc/PID/stat; the command name (field 2)
// is in parentheses and may hold spaces and parentheses itself.
func ppidFromStat(b []byte) uint32 {
	rest := b[bytes.LastIndexByte(b, ')')+1:]
	f := strings.Fields(string(rest)) // state, ppid, ...
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseUint(f[1], 10, 32)
	return uint32(n)
}
