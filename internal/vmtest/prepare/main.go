// Command prepare does the guest suites' one-time work (kernels, the Debian
// root, cosign, the test binaries) before any guest boots: `make test` runs
// it before the tests, so that none of it competes with a guest for the
// cores. What each step took, and whether it was cached, is printed.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kubearmor/kubearmor-host/internal/vmtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "prepare:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	if reason := vmtest.SkipReason(); reason != "" {
		fmt.Println("prepare: nothing to do, the guest tests will not run:", reason)
		return nil
	}
	logf := func(format string, args ...any) { fmt.Printf("prepare: "+format+"\n", args...) }
	return vmtest.Prepare(ctx, logf, []vmtest.GoTool{vmtest.Cosign()}, vmtest.GuestSuite(), vmtest.SystemSuite())
}
