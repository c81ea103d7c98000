//go:build linux

package notify

import (
	"os"
	"testing"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// TestMain fails the package's tests when they leave file descriptors open.
func TestMain(m *testing.M) { os.Exit(testutils.RunWithLeakCheck(m)) }
