// Command karmor is the kubearmor command-line client: it streams the
// daemon's alerts and logs, shows its live profile and summaries, reports
// what it runs with (or, without it, what this host could enforce with),
// and validates policies with the daemon's own checks.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kubearmor/kubearmor-host/daemon/api/client"
)

var version = "0.1.0-dev"

// exitError carries an exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	err := newRoot().Execute()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case noDaemon(err):
		fmt.Fprintln(os.Stderr, "karmor:", err)
		os.Exit(exitNoDaemon)
	default:
		fmt.Fprintln(os.Stderr, "karmor:", err)
		os.Exit(exitUsage)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "karmor",
		Short: "Client for the kubearmor host security daemon",
		Long: `karmor talks to the kubearmor daemon on this host through its local API
(a root-only unix socket). Exit status: 0 on success, 1 when a check fails
(a bad policy file), 2 on usage and other errors, 3 when the daemon is not
running.`,
		Example: `  sudo karmor probe
  sudo karmor logs --logFilter all
  sudo karmor profile
  sudo karmor summary -t network
  karmor policy validate /etc/kubearmor/policies/*.yaml
  source <(karmor completion bash)`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String(socketFlag, client.DefaultSocket, "the daemon's API socket (its apiSocket setting)")
	root.AddCommand(newLogsCmd(), newProfileCmd(), newSummaryCmd(), newProbeCmd(), newPolicyCmd())
	return root
}
