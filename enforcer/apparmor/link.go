package apparmor

import (
	"time"

	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// Linking pairs the two alert paths' reports of one decision: same
// operation, process, object and outcome, at times no further apart than
// linkSkew, from different paths. The audit log's clock is coarse (a
// jiffy) and both are converted to the wall clock apart, so the times
// differ by milliseconds; repeated identical decisions pair in order.
const (
	linkSkew = 50 * time.Millisecond
	// linkWait is how long a report waits for its twin. Audit records
	// arrive up to avcWait after the call (an event without an
	// end-of-event record), eBPF ones within milliseconds.
	linkWait = 2 * time.Second
	// maxUnlinked bounds the reports waiting: under a flood the oldest
	// give up early (counted) rather than memory growing.
	maxUnlinked = 1 << 16
)

// linkKey is what two reports of one decision share.
type linkKey struct {
	op     match.Op
	pid    uint32
	object string
	res0   uint32
	res1   uint32
	denied bool
}

// report is one alert path's account of a decision.
type report struct {
	key    linkKey
	source enforcer.AlertSource
	at     time.Time // when the kernel decided, by the path's clock
}

// incident is a decision reported once, waiting for the other path.
type incident struct {
	report
	arrived time.Time // monotonic, for expiry
	id      uint64
	linked  bool
	// What the first report was found to be, for its twin.
	attributed bool
	event      enforcer.Event
}

// linker numbers incidents and finds a report's twin. Used from one
// goroutine.
type linker struct {
	next    uint64
	waiting map[linkKey][]*incident // per key, in arrival order
	queue   []*incident             // every waiting incident, in arrival order
}

func newLinker() *linker {
	return &linker{waiting: make(map[linkKey][]*incident)}
}

// twin returns the waiting incident the other path reported that r is
// the second report of, and removes it from the waiting; nil if r is new.
func (l *linker) twin(r report, now time.Time) *incident {
	l.expire(now)
	for i, in := range l.waiting[r.key] {
		if in.source == r.source || in.linked {
			continue
		}
		if d := r.at.Sub(in.at); d > linkSkew || d < -linkSkew {
			continue
		}
		in.linked = true
		l.remove(r.key, i)
		return in
	}
	return nil
}

// add numbers a new incident and, if wait, keeps it for its twin.
func (l *linker) add(r report, now time.Time, wait bool) *incident {
	l.next++
	in := &incident{report: r, arrived: now, id: l.next}
	if !wait {
		return in
	}
	if len(l.queue) >= maxUnlinked {
		l.drop()
	}
	l.waiting[r.key] = append(l.waiting[r.key], in)
	l.queue = append(l.queue, in)
	return in
}

// expire forgets incidents that waited linkWait.
func (l *linker) expire(now time.Time) {
	for len(l.queue) > 0 && now.Sub(l.queue[0].arrived) > linkWait {
		l.drop()
	}
}

// drop forgets the oldest waiting incident.
func (l *linker) drop() {
	in := l.queue[0]
	l.queue[0] = nil
	l.queue = l.queue[1:]
	if in.linked {
		return // already paired, and out of waiting
	}
	// A key's incidents wait in arrival order, as in the queue: the oldest
	// is its first.
	l.remove(in.key, 0)
}

// remove takes the i-th incident waiting under k out. The first, the
// common case, costs nothing: a flood of one decision stays linear.
func (l *linker) remove(k linkKey, i int) {
	w := l.waiting[k]
	if i == 0 {
		w[0] = nil
		w = w[1:]
	} else {
		w = append(w[:i:i], w[i+1:]...)
	}
	if len(w) == 0 {
		delete(l.waiting, k)
	} else {
		l.waiting[k] = w
	}
}
