package systemd

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestVerify runs verify.sh: systemd-analyze verify on the unit, alone and
// in the boot transaction, with no output allowed.
func TestVerify(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("verify.sh needs root (a private mount namespace)")
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	out, err := exec.Command("sh", "verify.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("verify.sh: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestStartTimeout checks that the tests' wait for a start can be read
// from the unit, and that it leaves room for a start under emulation (about
// 10 s in the QEMU guests, make bench's BenchmarkStartup).
func TestStartTimeout(t *testing.T) {
	d, err := StartTimeout()
	if err != nil {
		t.Fatal(err)
	}
	if d < 30*time.Second {
		t.Errorf("TimeoutStartSec=%v: too short for a start under emulation", d)
	}
}

func TestParseTimespan(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration // 0: an error
	}{
		{"60s", time.Minute},
		{"1min", time.Minute},
		{"1min 30s", 90 * time.Second},
		{"100ms", 100 * time.Millisecond},
		{"2s 500ms", 2500 * time.Millisecond},
		{"1h 2min", time.Hour + 2*time.Minute},
		{"infinity", 0},
		{"", 0},
	}
	for _, tt := range tests {
		got, err := ParseTimespan(tt.in)
		if tt.want == 0 {
			if err == nil {
				t.Errorf("ParseTimespan(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTimespan(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
