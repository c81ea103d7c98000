package systemd

import (
	"os"
	"os/exec"
	"testing"
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
