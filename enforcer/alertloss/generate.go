package alertloss

import (
	"context"
	"errors"
	"math"
	"math/bits"
	"time"
)

// Result is what a generator did.
type Result struct {
	Calls   int           // calls made
	Refused int           // calls that failed with the expected error: violations generated
	Other   int           // calls that failed otherwise, or succeeded
	Elapsed time.Duration // first call to last return
	Latency Histogram     // of every call
}

// Rate is the achieved rate, calls per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Calls) / r.Elapsed.Seconds()
}

// Generate calls op n times, at rate calls per second (0: as fast as it
// can), and times each call. A call counts as a violation when it fails
// with an error that is want. Pacing is by schedule, not by sleeping after
// each call: call i is due at i/rate from the start, so a slow call is made
// up for and the rate holds on average; a generator that cannot keep up
// runs flat out and says so in its achieved rate.
func Generate(ctx context.Context, n int, rate float64, want error, op func() error) Result {
	var r Result
	start := time.Now()
	for i := range n {
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			// Sleeping costs far more than a call: only for a gap worth
			// it, and the calls due meanwhile are made back to back.
			if d := time.Until(due); d > 200*time.Microsecond {
				time.Sleep(d)
			}
		}
		if i%1024 == 0 && ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		err := op()
		r.Latency.Add(time.Since(t0))
		r.Calls++
		if err != nil && errors.Is(err, want) {
			r.Refused++
		} else {
			r.Other++
		}
	}
	r.Elapsed = time.Since(start)
	return r
}

// Histogram counts durations in power-of-two buckets of nanoseconds: cheap
// enough to record every call, precise to a factor of two.
type Histogram struct {
	Buckets [64]uint64 // bucket b: [2^(b-1), 2^b) ns; 0: under 1 ns
	Max     time.Duration
	N       uint64
}

// Add records d.
func (h *Histogram) Add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.Buckets[bits.Len64(uint64(d))]++
	h.N++
	if d > h.Max {
		h.Max = d
	}
}

// Quantile returns the upper bound of the bucket holding quantile q
// (0 < q <= 1), or Max if that is smaller.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.N == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.N)))
	var seen uint64
	for b, c := range h.Buckets {
		seen += c
		if seen >= rank {
			upper := time.Duration(uint64(1)<<b - 1)
			if b == 63 || upper > h.Max {
				return h.Max
			}
			return upper
		}
	}
	return h.Max
}
