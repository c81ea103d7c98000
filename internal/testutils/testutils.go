// Package testutils holds helpers shared by the project's tests: where a test
// runs (host or QEMU guest), what it needs (root, a kernel feature), and a
// TestMain wrapper that fails a package whose tests leak file descriptors.
//
// The rule they encode: a test skips only on a probed missing feature, with the
// reason; inside the VM guests (internal/vmtest), whose kernels are chosen to
// have every feature we use, a missing feature is a failure instead.
package testutils

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// GuestEnv is set to "1" by internal/vmtest in the environment of every
// process it starts in a QEMU guest.
const GuestEnv = "KUBEARMOR_VMTEST"

// InGuest reports whether the test runs inside a QEMU guest started by
// internal/vmtest.
func InGuest() bool {
	return os.Getenv(GuestEnv) == "1"
}

// ICountParam is on the kernel command line of a guest that internal/vmtest
// runs on an instruction-counting clock (Machine.CountInstructions).
const ICountParam = "kubearmor.icount=1"

// CountingInstructions reports whether this kernel's clock counts
// instructions (ICountParam): a benchmark then measures work, not time.
func CountingInstructions() bool {
	b, err := os.ReadFile("/proc/cmdline")
	return err == nil && slices.Contains(strings.Fields(string(b)), ICountParam)
}

// RequireRoot skips the test unless it runs as root (effective uid 0).
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (effective uid 0)")
	}
}

// RequireGuest skips the test unless it runs inside a QEMU guest, for tests
// that need BPF-LSM enforcement or other things the development host lacks.
func RequireGuest(tb testing.TB) {
	tb.Helper()
	if !InGuest() {
		tb.Skip("needs a kernel with BPF-LSM; runs in the QEMU guests (internal/vmtest, make test)")
	}
}

// RequireFeature checks the result of probing a kernel feature. A nil err
// means the feature is there. Otherwise the test fails in the guest, whose
// kernels should have every feature the tests use, and skips on the host,
// naming the feature and the error.
func RequireFeature(tb testing.TB, name string, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if InGuest() {
		tb.Fatalf("feature %s is missing in the VM guest, whose kernel should have it: %v", name, err)
	}
	tb.Skipf("feature %s is not available on this host: %v", name, err)
}

// CopyFile copies src to dst with mode, creating dst's directory. Tests use
// it to give a program a path of its own, which path-based rules need (a
// symlink would resolve to its target).
func CopyFile(tb testing.TB, src, dst string, mode os.FileMode) {
	tb.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		tb.Fatal(err)
	}
}
