package main

import (
	"context"
	"os"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/kubearmor/kubearmor-host/cmd/karmor/internal/profile"
	"github.com/kubearmor/kubearmor-host/daemon/record"
)

// profileBatch is how often the TUI takes in what arrived: under a flood it
// redraws ten times a second, not once a record.
const profileBatch = 100 * time.Millisecond

func newProfileCmd() *cobra.Command {
	var which string
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Live table of process, file and network activity",
		Long: `Shows the daemon's visibility logs (and, with --logFilter all, its alerts)
live, aggregated by program and resource in Process, File and Network tabs
(Syscall too when such records come): how often, the last result, when last
seen. Keys: Tab and Shift+Tab switch tabs, up/down or j/k scroll the rows,
left/right or h/l scroll long resources, / filters (Enter keeps the filter,
Esc clears it), s cycles the sort column, e exports the current tab as JSON
into the current directory, q quits.`,
		Example: `  sudo karmor profile
  sudo karmor profile --logFilter all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			streams, err := parseLogFilter(which)
			if err != nil {
				return err
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			dir, err := os.Getwd()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			p := tea.NewProgram(profile.New(dir), tea.WithAltScreen(), tea.WithContext(ctx),
				tea.WithInput(cmd.InOrStdin()), tea.WithOutput(cmd.OutOrStdout()))
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			var mu sync.Mutex
			var batch []record.Record
			wg.Go(func() {
				_ = c.Watch(ctx, streams, func(r record.Record) error {
					mu.Lock()
					batch = append(batch, r)
					mu.Unlock()
					return nil
				}, func(err error) { p.Send(profile.Lost{Err: err}) })
			})
			wg.Go(func() {
				t := time.NewTicker(profileBatch)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
					mu.Lock()
					b := batch
					batch = nil
					mu.Unlock()
					if len(b) > 0 {
						p.Send(profile.Records(b))
					}
				}
			})
			_, err = p.Run()
			if err == tea.ErrProgramKilled {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&which, "logFilter", "system", "what to show: system (logs), policy (alerts) or all")
	return cmd
}
