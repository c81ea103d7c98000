package detect

import (
	"os"
	"testing"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// TestMain fails the package if a test leaks a descriptor, such as the
// probe's BPF program or link.
func TestMain(m *testing.M) {
	os.Exit(testutils.RunWithLeakCheck(m))
}
