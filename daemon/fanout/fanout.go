// Package fanout delivers each published value to every subscriber through
// a bounded queue of the subscriber's own. Publishing never blocks: a
// subscriber that does not keep up loses its own values, and counts them,
// and no one else notices.
package fanout

import (
	"sync"
	"sync/atomic"
)

// Hub is a set of subscribers to values of type T.
type Hub[T any] struct {
	mu   sync.RWMutex
	subs map[*Sub[T]]struct{}
	// Counts of subscribers that have left, so that totals never shrink.
	goneDelivered, goneDropped atomic.Uint64
}

// New returns a hub without subscribers.
func New[T any]() *Hub[T] {
	return &Hub[T]{subs: make(map[*Sub[T]]struct{})}
}

// Sub is one subscriber: read its values from C until Close.
type Sub[T any] struct {
	hub       *Hub[T]
	c         chan T
	accept    func(T) bool
	delivered atomic.Uint64
	dropped   atomic.Uint64
	closeOnce sync.Once
}

// Subscribe adds a subscriber with a queue of size values, which receives
// the values that accept (nil: all) returns true for.
func (h *Hub[T]) Subscribe(size int, accept func(T) bool) *Sub[T] {
	s := &Sub[T]{hub: h, c: make(chan T, max(size, 1)), accept: accept}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Publish offers v to every subscriber that accepts it, without waiting
// for any.
func (h *Hub[T]) Publish(v T) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		if s.accept != nil && !s.accept(v) {
			continue
		}
		select {
		case s.c <- v:
			s.delivered.Add(1)
		default:
			s.dropped.Add(1)
		}
	}
}

// Stats are a hub's totals over all subscribers, past and present.
type Stats struct {
	Subscribers int
	Delivered   uint64 // values queued to a subscriber
	Dropped     uint64 // values a subscriber's full queue refused
}

// Stats returns the hub's totals.
func (h *Hub[T]) Stats() Stats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	st := Stats{Subscribers: len(h.subs), Delivered: h.goneDelivered.Load(), Dropped: h.goneDropped.Load()}
	for s := range h.subs {
		st.Delivered += s.delivered.Load()
		st.Dropped += s.dropped.Load()
	}
	return st
}

// C is the subscriber's queue. It is closed by Close.
func (s *Sub[T]) C() <-chan T { return s.c }

// Dropped is how many values this subscriber lost to a full queue.
func (s *Sub[T]) Dropped() uint64 { return s.dropped.Load() }

// Delivered is how many values reached this subscriber's queue.
func (s *Sub[T]) Delivered() uint64 { return s.delivered.Load() }

// Close unsubscribes and closes C, after which it yields what was still
// queued.
func (s *Sub[T]) Close() {
	s.closeOnce.Do(func() {
		h := s.hub
		h.mu.Lock()
		delete(h.subs, s)
		// Under the lock, so that the totals never count s twice or not
		// at all, and no Publish is sending to C.
		h.goneDelivered.Add(s.delivered.Load())
		h.goneDropped.Add(s.dropped.Load())
		close(s.c)
		h.mu.Unlock()
	})
}
