// Package lru is a bounded map that evicts its least recently used entry
// and counts what it evicted, for the daemon's tables that must not grow
// with the host's activity (the process tree, the summaries).
package lru

import "container/list"

// Map holds at most max entries. It is not safe for concurrent use.
type Map[K comparable, V any] struct {
	max     int
	m       map[K]*list.Element
	order   *list.List // of entry[K, V]; front: most recently used
	evicted uint64
}

type entry[K comparable, V any] struct {
	k K
	v V
}

// New returns a map of at most max entries.
func New[K comparable, V any](max int) *Map[K, V] {
	return &Map[K, V]{max: max, m: make(map[K]*list.Element), order: list.New()}
}

// Get returns k's value and marks it used.
func (c *Map[K, V]) Get(k K) (V, bool) {
	if e, ok := c.m[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(entry[K, V]).v, true
	}
	var zero V
	return zero, false
}

// Put sets k's value and marks it used; when the map is full, the least
// recently used entry makes room.
func (c *Map[K, V]) Put(k K, v V) {
	if e, ok := c.m[k]; ok {
		e.Value = entry[K, V]{k, v}
		c.order.MoveToFront(e)
		return
	}
	if len(c.m) >= c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.m, old.Value.(entry[K, V]).k)
		c.evicted++
	}
	c.m[k] = c.order.PushFront(entry[K, V]{k, v})
}

// Delete removes k.
func (c *Map[K, V]) Delete(k K) {
	if e, ok := c.m[k]; ok {
		c.order.Remove(e)
		delete(c.m, k)
	}
}

// Len is the number of entries.
func (c *Map[K, V]) Len() int { return len(c.m) }

// Evicted is how many entries were dropped to make room.
func (c *Map[K, V]) Evicted() uint64 { return c.evicted }

// Values returns the values, most recently used first.
func (c *Map[K, V]) Values() []V {
	out := make([]V, 0, len(c.m))
	for e := c.order.Front(); e != nil; e = e.Next() {
		out = append(out, e.Value.(entry[K, V]).v)
	}
	return out
}
