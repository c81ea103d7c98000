// Package monitor observes what processes do, for logs and summaries: exec
// and exit, file opens (resolved path, flags, result) and network connect,
// accept, bind and listen (family, protocol, addresses, ports, result),
// from tracepoints (bpf/visibility.bpf.c). It never decides anything; the
// enforcers do.
//
// Telemetry has its own ring buffer, apart from the enforcer's alerts, and
// a per-CPU rate limit in the kernel before it. Every event the kernel
// produced is either delivered or counted where it was dropped (Stats).
package monitor

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Kinds selects what is observed (hostVisibility in the config).
type Kinds uint32

// The kinds, as the BPF program numbers them.
const (
	Process Kinds = 1 << iota
	File
	Network
	// Capabilities has no monitor of its own: capability use is seen
	// through capability rules (an Audit rule logs each use, decided in
	// the capable hook). The daemon says so when it is asked for.
	Capabilities
)

// ParseKinds reads a hostVisibility value: a comma-separated list of
// process, file, network, capabilities, or none.
func ParseKinds(s string) (Kinds, error) {
	var k Kinds
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(f) {
		case "process":
			k |= Process
		case "file":
			k |= File
		case "network":
			k |= Network
		case "capabilities":
			k |= Capabilities
		case "none", "":
			if strings.TrimSpace(s) != strings.TrimSpace(f) {
				return 0, fmt.Errorf("%q: none cannot be combined with other kinds", s)
			}
		default:
			return 0, fmt.Errorf("%q: unknown kind %q (want process, file, network, capabilities or none)", s, strings.TrimSpace(f))
		}
	}
	return k, nil
}

// String renders kinds as ParseKinds reads them.
func (k Kinds) String() string {
	var names []string
	for _, n := range []struct {
		k    Kinds
		name string
	}{{Process, "process"}, {File, "file"}, {Network, "network"}, {Capabilities, "capabilities"}} {
		if k&n.k != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// Type is what an event records.
type Type uint32

// Event types, as the BPF program numbers them.
const (
	Exec Type = iota + 1
	Exit
	Open
	Connect
	Accept
	Bind
	Listen
	Fork // a new process (its PPID the parent); not logged, it feeds the process tree
)

var typeNames = [...]string{Exec: "exec", Exit: "exit", Open: "open", Connect: "connect", Accept: "accept", Bind: "bind",
	Listen: "listen", Fork: "fork"}

func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Event is one observed operation.
type Event struct {
	Time      time.Time
	Type      Type
	PID, TID  uint32 // process (thread group) and thread
	PPID      uint32
	UID       uint32
	Comm      string
	Ret       int32  // the system call's result; for Exit the exit status
	OpenFlags uint32 // Open: O_* flags
	// Path is Exec's program and Open's file: resolved from the kernel's
	// objects when the call succeeded, as the caller gave it otherwise.
	Path      string
	Truncated bool // Path did not fit
	// Exec: the working directory ("" if it did not fit) and the
	// controlling terminal ("pts0"; "" for none).
	Cwd, TTY string
	// Network: family (AF_*), socket type and protocol, and both ends.
	// Connect's Remote and Bind's Local are the address the call named.
	Family        uint8
	SockType      uint16
	Protocol      uint16
	Local, Remote netip.AddrPort
}
