// Package percpu reads the per-CPU counter arrays the BPF programs keep:
// each CPU counts on its own (no atomics in the hot path) and user space
// adds them up.
package percpu

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Sum returns, for each of the first n indices of a per-CPU array of u64,
// the total over all CPUs.
func Sum(m *ebpf.Map, n int) ([]uint64, error) {
	out := make([]uint64, n)
	var per []uint64
	for i := range out {
		if err := m.Lookup(uint32(i), &per); err != nil {
			return out, fmt.Errorf("read counter %d: %w", i, err)
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return out, nil
}
