package lru

import (
	"slices"
	"testing"
)

func TestMap(t *testing.T) {
	m := New[string, int](2)
	m.Put("a", 1)
	m.Put("b", 2)
	if v, ok := m.Get("a"); !ok || v != 1 { // a is now the most recent
		t.Fatalf("Get(a) = %d, %v", v, ok)
	}
	m.Put("c", 3) // evicts b, the least recently used
	if _, ok := m.Get("b"); ok || m.Evicted() != 1 || m.Len() != 2 {
		t.Errorf("after a third entry: b kept %v, evicted %d, len %d", ok, m.Evicted(), m.Len())
	}
	if got := m.Values(); !slices.Equal(got, []int{3, 1}) {
		t.Errorf("Values() = %v, want [3 1]", got)
	}
	m.Put("a", 10) // an update evicts nothing
	m.Delete("c")
	if got := m.Values(); !slices.Equal(got, []int{10}) || m.Evicted() != 1 {
		t.Errorf("after update and delete: %v, evicted %d", got, m.Evicted())
	}
	if _, ok := m.Get("zzz"); ok {
		t.Error("Get of a missing key found it")
	}
}
