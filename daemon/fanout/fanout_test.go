package fanout

import (
	"sync"
	"testing"
)

func TestFanout(t *testing.T) {
	tests := []struct {
		name        string
		publish     int
		queue       int
		accept      func(int) bool
		wantGot     int
		wantDropped uint64
	}{
		{name: "fits", publish: 10, queue: 10, wantGot: 10},
		{name: "overflows", publish: 25, queue: 10, wantGot: 10, wantDropped: 15},
		{name: "filtered", publish: 10, queue: 10, accept: func(v int) bool { return v%2 == 0 }, wantGot: 5},
		{name: "filtered then overflows", publish: 30, queue: 5, accept: func(v int) bool { return v%3 == 0 }, wantGot: 5, wantDropped: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New[int]()
			stalled := h.Subscribe(tt.queue, tt.accept)
			// A subscriber with room for everything is never affected by
			// the stalled one.
			roomy := h.Subscribe(tt.publish, nil)
			for i := range tt.publish {
				h.Publish(i)
			}
			stalled.Close()
			roomy.Close()
			got := 0
			prev := -1
			for v := range stalled.C() {
				if v <= prev {
					t.Errorf("out of order: %d after %d", v, prev)
				}
				prev = v
				got++
			}
			if got != tt.wantGot || stalled.Dropped() != tt.wantDropped {
				t.Errorf("stalled subscriber: got %d, dropped %d; want %d, %d", got, stalled.Dropped(), tt.wantGot, tt.wantDropped)
			}
			if uint64(got) != stalled.Delivered() {
				t.Errorf("delivered %d, but %d were in the queue", stalled.Delivered(), got)
			}
			n := 0
			for range roomy.C() {
				n++
			}
			if n != tt.publish || roomy.Dropped() != 0 {
				t.Errorf("roomy subscriber: got %d, dropped %d; want %d, 0", n, roomy.Dropped(), tt.publish)
			}
			st := h.Stats()
			want := Stats{Subscribers: 0, Delivered: uint64(tt.wantGot + tt.publish), Dropped: tt.wantDropped}
			if st != want {
				t.Errorf("stats after both left: %+v, want %+v", st, want)
			}
		})
	}
}

// TestConcurrent publishes from several goroutines while subscribers come
// and go; every value is delivered or counted as dropped, exactly once.
func TestConcurrent(t *testing.T) {
	h := New[int]()
	const publishers, each = 4, 5000
	stay := h.Subscribe(16, nil)
	var got int
	var readers sync.WaitGroup
	readers.Go(func() {
		for range stay.C() {
			got++
		}
	})
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for i := range each {
				h.Publish(i)
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			s := h.Subscribe(4, nil)
			s.Close()
			for range s.C() {
			}
		}
	})
	wg.Wait()
	stay.Close()
	readers.Wait()
	if uint64(got)+stay.Dropped() != publishers*each {
		t.Errorf("got %d + dropped %d != published %d", got, stay.Dropped(), publishers*each)
	}
	if st := h.Stats(); st.Subscribers != 0 || st.Delivered+st.Dropped < publishers*each {
		t.Errorf("stats %+v: want no subscribers and at least %d values accounted for", st, publishers*each)
	}
}
