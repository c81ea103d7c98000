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
	// stop waiting first rather than memory growing.
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

// side is where a report waits: its key, and its path.
type side struct {
	key    linkKey
	source enforcer.AlertSource
}

// incident is a decision reported once, waiting for the other path.
type incident struct {
	report
	arrived time.Time // monotonic, for expiry
	id      uint64
	done    bool // linked, or gave up waiting
	// What the first report was found to be, for its twin.
	attributed bool
	event      enforcer.Event
}

// linker numbers incidents and finds a report's twin. Used from one
// goroutine. Each path reports in the order of its clock, so a side's
// waiting list is in time order: a twin is found at its front, after
// dropping those too old to be anyone's (O(1) amortized, whatever a flood
// of one decision queues).
type linker struct {
	next    uint64
	waiting map[side][]*incident // in arrival order
	queue   []*incident          // every waiting incident, in arrival order
}

func newLinker() *linker {
	return &linker{waiting: make(map[side][]*incident)}
}

// twin returns the waiting incident the other path reported that r is
// the second report of, and takes it out of the waiting; nil if r is new.
func (l *linker) twin(r report, now time.Time) *incident {
	l.expire(now)
	other := side{key: r.key, source: enforcer.AlertAudit}
	if r.source == enforcer.AlertAudit {
		other.source = enforcer.AlertEBPF
	}
	w := l.waiting[other]
	var found *incident
	for len(w) > 0 {
		in := w[0]
		if d := r.at.Sub(in.at); d > linkSkew {
			// Older than r by more than the skew: no later report of
			// this path can be its twin either.
			in.done = true
			w[0], w = nil, w[1:]
			continue
		} else if d >= -linkSkew {
			in.done = true
			w[0], w = nil, w[1:]
			found = in
		}
		break
	}
	if len(w) == 0 {
		delete(l.waiting, other)
	} else {
		l.waiting[other] = w
	}
	return found
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
	s := side{key: r.key, source: r.source}
	l.waiting[s] = append(l.waiting[s], in)
	l.queue = append(l.queue, in)
	return in
}

// expire forgets incidents that waited linkWait.
func (l *linker) expire(now time.Time) {
	for len(l.queue) > 0 && now.Sub(l.queue[0].arrived) > linkWait {
		l.drop()
	}
}

// drop forgets the oldest waiting incident. It is the first of its side
// (both lists are in arrival order), unless twin took it already.
func (l *linker) drop() {
	in := l.queue[0]
	l.queue[0], l.queue = nil, l.queue[1:]
	if in.done {
		return
	}
	in.done = true
	s := side{key: in.key, source: in.source}
	w := l.waiting[s]
	if len(w) > 0 && w[0] == in {
		w[0], w = nil, w[1:]
	}
	if len(w) == 0 {
		delete(l.waiting, s)
	} else {
		l.waiting[s] = w
	}
}
