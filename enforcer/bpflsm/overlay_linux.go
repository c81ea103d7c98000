package bpflsm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// primeOverlay has the kernel load the overlay module, where overlay is one
// and not loaded yet, before the programs load: their CO-RE relocations
// read the module's types (the upper layer of an overlay that only a
// private namespace mounts, where what is changed through it lands), and a
// module loaded later would find the programs built without them until the
// next start. fsopen(2) of the type asks for the module as a mount would.
// ENODEV: this kernel has no overlay at all, so nobody can mount one.
func primeOverlay() error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if errors.Is(err, unix.ENODEV) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	return unix.Close(fd)
}
