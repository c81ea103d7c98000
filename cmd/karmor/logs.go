package main

import (
	"fmt"
	"io"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kubearmor/kubearmor-host/cmd/karmor/internal/render"
	"github.com/kubearmor/kubearmor-host/daemon/api/client"
	"github.com/kubearmor/kubearmor-host/daemon/record"
)

// logFilter is what --operation, --resource and --source keep.
type logFilter struct {
	operation        string
	resource, source *regexp.Regexp
}

func (f logFilter) keep(r record.Record) bool {
	var op, res, src string
	switch r := r.(type) {
	case record.Alert:
		op, res, src = r.Operation, r.Resource, r.Source
	case record.Log:
		op, res, src = r.Operation, r.Resource, r.Source
	}
	return (f.operation == "" || strings.EqualFold(f.operation, op)) &&
		(f.resource == nil || f.resource.MatchString(res)) &&
		(f.source == nil || f.source.MatchString(src))
}

// operations are the values of a record's Operation.
var operations = []string{"process", "file", "network", "capabilities", "syscall"}

func newLogsCmd() *cobra.Command {
	var which, operation, resource, source string
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Stream the daemon's alerts and logs",
		Long: `Streams policy alerts (--logFilter policy, the default), visibility logs
(system) or both (all) as the daemon makes them. Text mode prints each record
as KubeArmor's client does; --json prints one JSON object a line with
KubeArmor's field names. When the daemon restarts, karmor waits for it and
goes on (what happened meanwhile is in the journal).`,
		Example: `  karmor logs
  karmor logs --logFilter all --json | jq .
  karmor logs --logFilter system --operation file --resource '^/etc/'
  karmor logs --source 'bin/(ba)?sh$' --limit 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			streams, err := parseLogFilter(which)
			if err != nil {
				return err
			}
			f := logFilter{operation: operation}
			if operation != "" && !slices.Contains(operations, strings.ToLower(operation)) {
				return fmt.Errorf("--operation: unknown operation %q (one of %s)", operation, strings.Join(operations, ", "))
			}
			if f.resource, err = compile("--resource", resource); err != nil {
				return err
			}
			if f.source, err = compile("--source", source); err != nil {
				return err
			}
			if limit < 0 {
				return fmt.Errorf("--limit: must not be negative, got %d", limit)
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			write := render.Text
			if asJSON {
				write = render.JSON
			}
			n := 0
			return c.Watch(ctx, streams, func(r record.Record) error {
				if !f.keep(r) {
					return nil
				}
				if err := write(out, r); err != nil {
					return err
				}
				if n++; limit > 0 && n >= limit {
					return io.EOF
				}
				return nil
			}, func(err error) {
				if err != nil {
					fmt.Fprintf(errOut, "karmor: lost the daemon (%v); waiting for it to come back\n", err)
				} else {
					fmt.Fprintln(errOut, "karmor: the daemon is back; streaming again")
				}
			})
		},
	}
	cmd.Flags().StringVar(&which, "logFilter", "policy", "what to stream: policy (alerts), system (logs) or all")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object a line")
	cmd.Flags().StringVar(&operation, "operation", "", "only this operation: "+strings.Join(operations, ", "))
	cmd.Flags().StringVar(&resource, "resource", "", "only resources matching this regular expression")
	cmd.Flags().StringVar(&source, "source", "", "only sources (the acting program) matching this regular expression")
	cmd.Flags().IntVar(&limit, "limit", 0, "stop after this many records (0: no limit)")
	return cmd
}

func parseLogFilter(s string) (client.Streams, error) {
	switch s {
	case "policy":
		return client.Streams{Alerts: true}, nil
	case "system":
		return client.Streams{Logs: true}, nil
	case "all":
		return client.Streams{Alerts: true, Logs: true}, nil
	}
	return client.Streams{}, fmt.Errorf("--logFilter: unknown filter %q (policy, system or all)", s)
}

func compile(flag, expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return re, nil
}
