package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

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
