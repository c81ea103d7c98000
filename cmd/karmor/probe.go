package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubearmor/kubearmor-host/cmd/karmor/internal/render"
	"github.com/kubearmor/kubearmor-host/daemon/api/hostpb"

	"github.com/kubearmor/kubearmor-host/enforcer/detect"
)

func newProbeCmd() *cobra.Command {
	var output string
	var local bool
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Show what the daemon runs with, or what this host could enforce with",
		Long: `When the daemon runs, shows what it reports: kernel, BTF, the active LSMs,
the enforcer and why it was chosen, postures, visibility, each policy file's
status and every counter. When it does not, probes this host as the daemon
does at start: whether BPF-LSM programs really attach, whether AppArmor
works, which enforcer the daemon would choose and why, and how to enable
what is missing. Run it as root: the socket and the probe program need it.`,
		Example: `  sudo karmor probe
  sudo karmor probe -o json | jq .enforcerReason
  sudo karmor probe --local   # this host, even with the daemon running`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o: unknown format %q (text or json)", output)
			}
			if !local {
				p, err := daemonProbe(cmd)
				switch {
				case err == nil && output == "json":
					return printJSON(cmd.OutOrStdout(), p)
				case err == nil:
					return render.Probe(cmd.OutOrStdout(), p)
				case !noDaemon(err):
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "karmor: %v; probing this host instead\n\n", err)
			}
			r := detect.Probe(cmd.Context())
			choice, err := detect.Choose(detect.ConfigAuto, r)
			if err != nil {
				return err
			}
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Report detect.Report
					Choice detect.Choice
				}{r, choice})
			default:
				printProbe(cmd.OutOrStdout(), r, choice)
				return nil
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&local, "local", false, "probe this host even when the daemon runs")
	return cmd
}

func printProbe(w io.Writer, r detect.Report, c detect.Choice) {
	lsms := strings.Join(r.LSMs, ",")
	if lsms == "" {
		lsms = "unknown: " + r.LSMError
	}
	fmt.Fprintf(w, "Kernel:      %s\n", r.KernelRelease)
	fmt.Fprintf(w, "BTF:         %v\n", r.BTF)
	fmt.Fprintf(w, "Active LSMs: %s\n", lsms)
	fmt.Fprintf(w, "BPF-LSM:     %s: %s\n", r.BPFLSM.Status, r.BPFLSM.Reason)
	fmt.Fprintf(w, "AppArmor:    %s: %s\n", r.AppArmor.Status, r.AppArmor.Reason)
	fmt.Fprintf(w, "Enforcer:    %s\n", c.Enforcer)
	fmt.Fprintf(w, "Why:         %s\n", c.Reason)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "Note:        %s\n", n)
	}
}

// daemonProbe asks the daemon for its probe.
func daemonProbe(cmd *cobra.Command) (*hostpb.ProbeReply, error) {
	c, err := dial(cmd)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Probe(cmd.Context())
}
