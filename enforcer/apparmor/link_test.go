package apparmor

import (
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

func TestLinker(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	open := linkKey{op: match.OpOpenRead, pid: 42, object: "/etc/shadow", denied: true}
	other := open
	other.pid = 43
	ebpf := func(k linkKey, ms int) report {
		return report{key: k, source: enforcer.AlertEBPF, at: t0.Add(time.Duration(ms) * time.Millisecond)}
	}
	audit := func(k linkKey, ms int) report {
		return report{key: k, source: enforcer.AlertAudit, at: t0.Add(time.Duration(ms) * time.Millisecond)}
	}
	type step struct {
		r       report
		arrive  time.Duration // after t0, by the daemon's clock
		twinOf  int           // index of the step whose incident this links to; -1: a new incident
		comment string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"ebpf then audit", []step{
			{ebpf(open, 0), 0, -1, ""},
			{audit(open, 3), 300 * time.Millisecond, 0, "audit's clock is a jiffy behind or ahead"},
		}},
		{"audit then ebpf", []step{
			{audit(open, 0), 0, -1, ""},
			{ebpf(open, -2), 10 * time.Millisecond, 0, ""},
		}},
		{"same path twice is two incidents", []step{
			{ebpf(open, 0), 0, -1, ""},
			{ebpf(open, 1), 0, -1, ""},
		}},
		{"another process", []step{
			{ebpf(open, 0), 0, -1, ""},
			{audit(other, 0), 0, -1, ""},
		}},
		{"another outcome", []step{
			{ebpf(open, 0), 0, -1, ""},
			{audit(linkKey{op: open.op, pid: open.pid, object: open.object}, 0), 0, -1, "an audited allow is not this refusal"},
		}},
		{"too far apart in time", []step{
			{ebpf(open, 0), 0, -1, ""},
			{audit(open, 60), 0, -1, ""},
		}},
		{"waited too long", []step{
			{ebpf(open, 0), 0, -1, ""},
			{audit(open, 0), linkWait + time.Millisecond, -1, ""},
		}},
		{"repeats pair in order", []step{
			{ebpf(open, 0), 0, -1, ""},
			{ebpf(open, 1), 0, -1, ""},
			{audit(open, 0), time.Millisecond, 0, ""},
			{audit(open, 1), time.Millisecond, 1, ""},
			{audit(open, 2), time.Millisecond, -1, "both eBPF reports are taken"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLinker()
			ids := make([]uint64, len(tt.steps))
			for i, s := range tt.steps {
				now := t0.Add(s.arrive)
				if in := l.twin(s.r, now); in != nil {
					if s.twinOf < 0 {
						t.Fatalf("step %d linked to incident %d, want a new one (%s)", i, in.id, s.comment)
					}
					if in.id != ids[s.twinOf] {
						t.Fatalf("step %d linked to incident %d, want %d (step %d)", i, in.id, ids[s.twinOf], s.twinOf)
					}
					ids[i] = in.id
					continue
				}
				if s.twinOf >= 0 {
					t.Fatalf("step %d is a new incident, want it linked to step %d (%s)", i, s.twinOf, s.comment)
				}
				ids[i] = l.add(s.r, now, true).id
			}
		})
	}
}

// TestLinkerBounded: under a flood without twins the waiting list stays
// bounded, and what is left is consistent.
func TestLinkerBounded(t *testing.T) {
	l := newLinker()
	t0 := time.Now()
	k := linkKey{op: match.OpOpenRead, pid: 1, object: "/x", denied: true}
	for i := range maxUnlinked + 100 {
		l.add(report{key: k, source: enforcer.AlertEBPF, at: t0.Add(time.Duration(i) * time.Microsecond)}, t0, true)
	}
	s := side{key: k, source: enforcer.AlertEBPF}
	if len(l.queue) != maxUnlinked || len(l.waiting[s]) != maxUnlinked {
		t.Fatalf("%d queued, %d waiting; want %d each", len(l.queue), len(l.waiting[s]), maxUnlinked)
	}
	// Audit reports of the same decision, each a little later: found at
	// the front, whatever waits behind (a linear scan would take seconds).
	for i := range 10000 {
		at := t0.Add(time.Duration(100+i) * time.Microsecond)
		if in := l.twin(report{key: k, source: enforcer.AlertAudit, at: at}, t0); in == nil {
			t.Fatalf("audit report %d found no twin", i)
		}
	}
	l.expire(t0.Add(linkWait + time.Second))
	if len(l.queue) != 0 || len(l.waiting) != 0 {
		t.Fatalf("after expiry: %d queued, %d keys waiting", len(l.queue), len(l.waiting))
	}
}
