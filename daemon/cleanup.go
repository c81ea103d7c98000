package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"
)

// unitName is the systemd unit the packages install.
const unitName = "kubearmor.service"

// KeepPinsAfterStop tells ExecStopPost whether the pinned programs must
// stay: after a failure (SERVICE_RESULT is not "success") they are what
// still enforces, and before a restart (a start job is queued for the unit)
// the next daemon takes them over. Only a deliberate stop removes them.
func KeepPinsAfterStop(lookupEnv func(string) (string, bool)) (bool, string) {
	if res, ok := lookupEnv("SERVICE_RESULT"); ok && res != "success" {
		return true, fmt.Sprintf("service ended with %q", res)
	}
	if _, ok := lookupEnv("INVOCATION_ID"); !ok {
		return false, ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemctl", "list-jobs", "--no-legend", "--plain").Output()
	if err != nil {
		return false, ""
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == unitName && (f[2] == "start" || f[2] == "restart") {
			return true, "a restart of " + unitName + " is queued"
		}
	}
	return false, ""
}

// Cleanup removes state a stopped daemon may leave behind, for the unit's
// ExecStopPost. Today that is the BPF pin directory (bpfPinPath); it is
// safe to run when nothing is there, and it never fails a boot: a missing
// bpffs is not an error.
func Cleanup(pinPath string) ([]string, error) {
	if _, err := os.Stat(pinPath); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var removed []string
	entries, err := os.ReadDir(pinPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", pinPath, err)
	}
	for _, e := range entries {
		removed = append(removed, pinPath+"/"+e.Name())
	}
	if err := os.RemoveAll(pinPath); err != nil {
		return removed, fmt.Errorf("remove %s: %w", pinPath, err)
	}
	return append(removed, pinPath), nil
}
