package vmtest

import "testing"

// TestGuests boots every kernel (KernelPackages) and runs the guest
// packages' tests there (GuestSuite), as subtests <kernel release>/<package
// dir>/<test>. It needs root and qemu-system-x86_64; see README.md.
func TestGuests(t *testing.T) {
	RunTests(t, GuestSuite())
}
