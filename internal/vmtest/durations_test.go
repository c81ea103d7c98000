package vmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDurations checks the report every guest adds to DurationsEnv's file:
// its time against its limit, each package, and the tests over their share.
func TestDurations(t *testing.T) {
	s := Suite{Name: "guests", Shares: map[string]time.Duration{"cmd/kubearmor.TestLong": 3 * time.Minute}}
	report := &packageReport{Tests: []*guestTest{
		{name: "TestQuick", action: "pass", elapsed: 59},
		{name: "TestSlow", action: "fail", elapsed: 61},       // over DefaultShare
		{name: "TestLong", action: "pass", elapsed: 170},      // within its listed share
		{name: "TestLonger", action: "pass", elapsed: 60 * 4}, // no share listed
	}}
	tests := []struct {
		name     string
		total    time.Duration
		packages func(g *guestDurations)
		want     []string
		notWant  []string
	}{
		{
			name:  "within half",
			total: 4 * time.Minute,
			packages: func(g *guestDurations) {
				g.addPackage(s, guestPackage{Rel: "enforcer/detect"}, Output{Duration: 12 * time.Second, Finished: true}, &packageReport{})
				g.addPackage(s, guestPackage{Rel: "cmd/kubearmor"}, Output{Duration: 3 * time.Minute, Finished: true}, report)
			},
			want: []string{
				"guest guests 6.1.0-56-cloud-amd64: 4m0s of its 10m0s limit (40%), boot 5.2s\n",
				"  enforcer/detect      12s\n",
				"  cmd/kubearmor       3m0s\n",
				"  OVER ITS SHARE: cmd/kubearmor.TestSlow took 1m1s, its share is 1m0s\n",
				"  OVER ITS SHARE: cmd/kubearmor.TestLonger took 4m0s, its share is 1m0s\n",
			},
			notWant: []string{"TestQuick", "TestLong took", "HALF"},
		},
		{
			name:  "over half, a package cut short and one never run",
			total: 5*time.Minute + time.Second,
			packages: func(g *guestDurations) {
				cut := &packageReport{Tests: []*guestTest{{name: "TestDone", action: "pass", elapsed: 1}, {name: "TestHung"}}}
				g.addPackage(s, guestPackage{Rel: "enforcer/bpflsm"}, Output{Duration: 5 * time.Minute, Output: []byte("...")}, cut)
				g.addPackage(s, guestPackage{Rel: "cmd/kubearmor"}, Output{}, nil)
			},
			want: []string{
				"(50%), boot 5.2s; MORE THAN HALF ITS LIMIT\n",
				"  enforcer/bpflsm     5m0s (did not finish)\n",
				"  cmd/kubearmor         0s (did not run)\n",
				"  OVER ITS SHARE: enforcer/bpflsm.TestHung did not finish\n",
			},
			notWant: []string{"TestDone"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &guestDurations{suite: "guests", kernel: "6.1.0-56-cloud-amd64", limit: 10 * time.Minute,
				boot: 5200 * time.Millisecond, total: tt.total}
			tt.packages(g)
			file := filepath.Join(t.TempDir(), "durations.txt")
			t.Setenv(DurationsEnv, file)
			for range 2 { // appended, not replaced
				if err := appendDurations(g); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := string(b)
			if strings.Count(got, "guest guests ") != 2 {
				t.Errorf("want the report twice:\n%s", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("report lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("report has %q:\n%s", w, got)
				}
			}
		})
	}
}
