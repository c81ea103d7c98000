package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kubearmor/kubearmor-host/cmd/karmor/internal/render"
)

func newSummaryCmd() *cobra.Command {
	var kind, output string
	cmd := &cobra.Command{
		Use:   "summary",
		Short: "Show what the host has been doing: process, file and network tables",
		Long: `Shows the daemon's summary tables: programs run and files opened, by the
program that did it, with counts, last result and time; and the ingress
connections, egress connections and bind points (protocol, program, peer or
bind address, port, count, last time). The daemon keeps them from its
visibility monitors in bounded tables (hostVisibility must not be none).`,
		Example: `  karmor summary
  karmor summary -t network
  karmor summary -t file -o json | jq '.file[] | select(.lastResult != "Passed")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch kind {
			case "", "process", "file", "network":
			default:
				return fmt.Errorf("-t: unknown type %q (process, file or network)", kind)
			}
			if output != "text" && output != "json" {
				return fmt.Errorf("-o: unknown format %q (text or json)", output)
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			s, err := c.Summary(cmd.Context(), kind)
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), s)
			}
			return render.Summary(cmd.OutOrStdout(), s, kind)
		},
	}
	cmd.Flags().StringVarP(&kind, "type", "t", "", "only one table kind: process, file or network")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
