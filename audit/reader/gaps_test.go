package reader

import "testing"

// TestGaps: go-libaudit reports gaps in uint32 arithmetic, so an event
// that arrives after a later one shows as a gap of about 2^32; only
// believable gaps count as lost.
func TestGaps(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want uint64
	}{
		{3, 3},
		{maxGap, maxGap},
		{maxGap + 1, 0},
		{1<<32 - 2, 0}, // serial 7 after serial 8
		{0, 0},
	} {
		r := &Reader{}
		stream{r: r}.EventsLost(tt.n)
		if got := r.Stats().Gaps; got != tt.want {
			t.Errorf("EventsLost(%d) counted %d, want %d", tt.n, got, tt.want)
		}
	}
}
