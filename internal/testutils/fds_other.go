//go:build !linux

package testutils

import "testing"

// RunWithLeakCheck runs the package's tests. Only Linux has /proc/self/fd to
// check for leaked file descriptors, so elsewhere it is plain m.Run.
func RunWithLeakCheck(m *testing.M) int {
	return m.Run()
}
