// Package proctree remembers the live processes of the host (executable,
// parent, user, working directory and terminal at exec), fed by exec and
// exit events and seeded from /proc, so that logs
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
	UID       uint32 // real
	Exe       string
	Cwd       string // at exec ("" when unknown)
	TTY       string // the controlling terminal, by the kernel's name for it ("pts0", "tty1"; "" when none)
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
func (t *Tree) Exec(p Proc) {
	t.procs.Put(p.PID, p)
}

// Exit forgets pid.
func (t *Tree) Exit(pid uint32) { t.procs.Delete(pid) }

// Fork records a new process: a copy of its parent (same program, working
// directory and terminal) until it execs.
func (t *Tree) Fork(pid, ppid, uid uint32) {
	p, _ := t.Lookup(ppid)
	p.PID, p.PPID, p.UID = pid, ppid, uid
	t.procs.Put(pid, p)
}

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
		p.PPID, p.TTY = fromStat(b)
	}
	if b, err := os.ReadFile(dir + "/status"); err == nil {
		p.UID = uidFromStatus(b)
	}
	p.Cwd, _ = os.Readlink(dir + "/cwd")
	return p, true
}

// uidFromStatus reads the real uid from /proc/<pid>/status.
func uidFromStatus(b []byte) uint32 {
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 32)
				return uint32(n)
			}
		}
	}
	return 0
}

// ttyName names a tty_nr of /proc/<pid>/stat as the kernel names the tty
// (tty_struct.name, which the exec monitor reads): "" for none.
func ttyName(nr uint64) string {
	major, minor := (nr>>8)&0xfff, (nr&0xff)|((nr>>12)&0xfff00)
	switch {
	case nr == 0:
		return ""
	case major >= 136 && major <= 143: // Unix98 pseudo-terminals
		return "pts" + strconv.FormatUint((major-136)*256+minor, 10)
	case major == 4 && minor < 64:
		return "tty" + strconv.FormatUint(minor, 10)
	case major == 4:
		return "ttyS" + strconv.FormatUint(minor-64, 10)
	}
	return strconv.FormatUint(major, 10) + ":" + strconv.FormatUint(minor, 10)
}

// fromStat reads the parent and the terminal from /proc/<pid>/stat, whose
// command field may hold spaces and parentheses.
func fromStat(b []byte) (ppid uint32, tty string) {
	rest := b[bytes.LastIndexByte(b, ')')+1:]
	f := strings.Fields(string(rest)) // state, ppid, pgrp, session, tty_nr, ...
	if len(f) < 5 {
		return 0, ""
	}
	n, _ := strconv.ParseUint(f[1], 10, 32)
	nr, _ := strconv.ParseUint(f[4], 10, 32)
	return uint32(n), ttyName(nr)
}
