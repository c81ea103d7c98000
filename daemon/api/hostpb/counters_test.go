package hostpb

import (
	"slices"
	"testing"
)

func TestCounters(t *testing.T) {
	cs := []*Counter{{Stage: "enforcer", Name: "denied", Value: 3}, {Stage: "api", Name: "logs_dropped", Value: 1},
		{Stage: "enforcer", Name: "audited", Value: 5}}
	r := &ProbeReply{Counters: cs}
	for _, tt := range []struct {
		stage, name string
		want        uint64
	}{{"enforcer", "denied", 3}, {"enforcer", "audited", 5}, {"api", "logs_dropped", 1}, {"api", "denied", 0}, {"none", "x", 0}} {
		if got := r.Counter(tt.stage, tt.name); got != tt.want {
			t.Errorf("Counter(%s, %s) = %d, want %d", tt.stage, tt.name, got, tt.want)
		}
	}
	if got := (*ProbeReply)(nil).Counter("enforcer", "denied"); got != 0 {
		t.Errorf("nil reply: %d", got)
	}
	stages, by := ByStage(cs)
	if !slices.Equal(stages, []string{"enforcer", "api"}) || len(by["enforcer"]) != 2 || by["enforcer"][1].Name != "audited" || len(by["api"]) != 1 {
		t.Errorf("ByStage: %v, %v", stages, by)
	}
}
