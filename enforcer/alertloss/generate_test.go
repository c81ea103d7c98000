package alertloss

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	tests := []struct {
		name string
		add  []time.Duration
		q    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", []time.Duration{1000}, 0.5, 1000},
		{"median in its bucket", []time.Duration{100, 100, 100, 5000}, 0.5, 127},
		{"tail is the max", []time.Duration{100, 100, 100, 5000}, 1, 5000},
		{"p99 of 99 fast and one slow", append(repeat(99, 1000), time.Second), 0.99, 1023},
		{"p999 of 99 fast and one slow", append(repeat(99, 1000), time.Second), 0.999, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, d := range tt.add {
				h.Add(d)
			}
			if got := h.Quantile(tt.q); got != tt.want {
				t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestGenerate(t *testing.T) {
	calls := 0
	op := func() error {
		calls++
		if calls%4 == 0 {
			return nil
		}
		return syscall.EACCES
	}
	r := Generate(context.Background(), 100, 0, syscall.EACCES, op)
	if r.Calls != 100 || r.Refused != 75 || r.Other != 25 || r.Latency.N != 100 {
		t.Errorf("result %+v", r)
	}
	// Paced: 50 calls at 1,000/s take about 49 ms, never much less.
	r = Generate(context.Background(), 50, 1000, syscall.EACCES, func() error { return syscall.EACCES })
	if r.Elapsed < 45*time.Millisecond {
		t.Errorf("50 calls at 1000/s took %v", r.Elapsed)
	}
	// A done context stops it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := Generate(ctx, 1<<20, 0, syscall.EACCES, func() error { return errors.New("x") }); r.Calls != 0 {
		t.Errorf("%d calls after cancel", r.Calls)
	}
}
