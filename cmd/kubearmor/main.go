// Command kubearmor is the host security daemon: it enforces the
// KubeArmorHostPolicy files in /etc/kubearmor/policies with BPF-LSM and
// reports every decision to journald.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/kubearmor/kubearmor-host/daemon"
	"github.com/kubearmor/kubearmor-host/daemon/api"
	"github.com/kubearmor/kubearmor-host/daemon/config"
	"github.com/kubearmor/kubearmor-host/daemon/journal"
	"github.com/kubearmor/kubearmor-host/daemon/notify"
	"github.com/kubearmor/kubearmor-host/daemon/record"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "kubearmor: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := config.NewFlagSet("kubearmor")
	showVersion := fs.Bool("version", false, "print the version and exit")
	cleanup := fs.Bool("cleanup", false, "remove state left by a stopped daemon (pinned BPF objects) and exit; for ExecStopPost")
	reloadPID := fs.Int("reload", 0, "make the daemon with this PID rescan its policies (SIGHUP), wait until it has, and report the policy files it rejected (exit 1 if any); for ExecReload")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if *showVersion {
		fmt.Println("kubearmor", version)
		return nil
	}
	cfg, err := config.FromFlags(fs, os.LookupEnv)
	if err != nil {
		return err
	}
	if *reloadPID != 0 {
		return reload(context.Background(), cfg.APISocket, *reloadPID, os.Stdout)
	}
	if *cleanup {
		// systemd runs ExecStopPost after crashes and before restarts too;
		// then the pinned programs are what still enforces, and they stay.
		if keep, why := daemon.KeepPinsAfterStop(os.LookupEnv); keep {
			fmt.Printf("%s: leaving %s in place\n", why, cfg.BPFPinPath)
			return nil
		}
		removed, err := daemon.Cleanup(cfg.BPFPinPath)
		for _, p := range removed {
			fmt.Println("removed", p)
		}
		// The AppArmor enforcer's profiles, where it ran.
		profiles, aaErr := daemon.CleanupAppArmor()
		for _, p := range profiles {
			fmt.Println("removed AppArmor profile", p)
		}
		return errors.Join(err, aaErr)
	}

	handler, closeLog, target, err := journal.NewLogHandler(journal.LogOptions{
		Target:    string(cfg.LogTarget),
		Handler:   &slog.HandlerOptions{Level: cfg.LogLevel},
		LookupEnv: os.LookupEnv,
	})
	if err != nil {
		return fmt.Errorf("set up logging: %w", err)
	}
	defer closeLog.Close()
	// The local API streams the daemon's own log lines too.
	apiServer := api.New(cfg.HostName, api.DefaultQueue, nil)
	log := slog.New(apiServer.Messages(handler))
	apiServer.SetLogger(log)
	log.Info("kubearmor starting", "version", version, "log_target", target, "config", cfg)

	// One writer for stdout, so that alert and log lines never interleave.
	stdout := record.NewJSONWriter(os.Stdout)
	alerts, closeAlerts, err := alertWriter(cfg, target, stdout)
	if err != nil {
		return err
	}
	defer closeAlerts()
	logs, closeLogs, err := hostLogWriter(cfg, stdout)
	if err != nil {
		return err
	}
	defer closeLogs()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	return daemon.Run(ctx, daemon.Options{
		Config:   cfg,
		Logger:   log,
		Notifier: notify.New(os.LookupEnv, log),
		Alerts:   alerts,
		Logs:     logs,
		API:      apiServer,
		Version:  version,
		Reload:   hup,
		Load:     daemon.LoadEnforcer,
		// Under systemd (INVOCATION_ID), ExecStopPost decides whether the
		// pins go: a crash or a restart keeps them enforcing.
		KeepPins: os.Getenv("INVOCATION_ID") != "",
	})
}

// alertWriter picks where alerts go: journald when configured, or on auto
// when the logs go there too (the daemon runs under systemd); JSON lines on
// stdout otherwise.
func alertWriter(cfg config.Config, logTarget string, stdout record.Writer) (record.Writer, func(), error) {
	target := cfg.AlertTarget
	if target == config.AlertTargetAuto {
		target = config.AlertTargetStdout
		if logTarget == journal.TargetJournald {
			target = config.AlertTargetJournald
		}
	}
	if target == config.AlertTargetStdout {
		return stdout, func() {}, nil
	}
	c, err := journal.NewClient(journal.DefaultSocket, journal.DefaultIdentifier)
	if err != nil {
		return nil, nil, fmt.Errorf("open journald for alerts: %w", err)
	}
	return record.JournalWriter{Sender: c}, func() { c.Close() }, nil
}

// hostLogWriter picks where visibility logs go (hostLogTarget): nowhere
// but the local API by default, since a busy host makes many.
func hostLogWriter(cfg config.Config, stdout record.Writer) (record.Writer, func(), error) {
	switch cfg.HostLogTarget {
	case config.HostLogTargetStdout:
		return stdout, func() {}, nil
	case config.HostLogTargetJournald:
		c, err := journal.NewClient(journal.DefaultSocket, journal.DefaultIdentifier)
		if err != nil {
			return nil, nil, fmt.Errorf("open journald for logs: %w", err)
		}
		return record.JournalWriter{Sender: c}, func() { c.Close() }, nil
	}
	return nil, func() {}, nil
}
