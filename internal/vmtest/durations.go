package vmtest

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// DurationsEnv names a file that RunTests appends every guest's durations
// to (`make test` prints it at the end, so each CI log shows the margin).
const DurationsEnv = "KUBEARMOR_VMTEST_DURATIONS"

// DefaultShare is how long one top-level guest test may take before the
// report names it: a guest test that needs more is listed in Suite.Shares.
const DefaultShare = time.Minute

// guestDurations is what one guest took, against its limit and shares.
type guestDurations struct {
	suite, kernel string
	limit, boot   time.Duration
	total         time.Duration
	packages      []packageDuration
	overShare     []string // tests that took more than their share
}

type packageDuration struct {
	rel      string
	duration time.Duration
	started  bool
	finished bool
}

// share returns a top-level guest test's share of its guest's time.
func (s Suite) share(pkgRel, test string) time.Duration {
	if d, ok := s.Shares[pkgRel+"."+test]; ok {
		return d
	}
	return DefaultShare
}

// addPackage records a package's run and, from its report (nil when the
// output could not be read), the tests over their share.
func (g *guestDurations) addPackage(s Suite, p guestPackage, out Output, report *packageReport) {
	g.packages = append(g.packages, packageDuration{rel: p.Rel, duration: out.Duration,
		started: out.Finished || len(out.Output) > 0, finished: out.Finished})
	if report == nil {
		return
	}
	for _, t := range report.Tests {
		if t.action == "" {
			// Started and never ended: the guest stopped in it.
			g.overShare = append(g.overShare, fmt.Sprintf("%s.%s did not finish", p.Rel, t.name))
			continue
		}
		took := time.Duration(t.elapsed * float64(time.Second))
		if share := s.share(p.Rel, t.name); took > share {
			g.overShare = append(g.overShare, fmt.Sprintf("%s.%s took %v, its share is %v", p.Rel, t.name, took.Round(time.Second), share))
		}
	}
}

// overHalf reports whether the guest used more than half its limit: the
// margin the suite keeps for a slower machine and for tests to come.
func (g *guestDurations) overHalf() bool { return g.total > g.limit/2 }

func (g *guestDurations) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "guest %s %s: %v of its %v limit (%.0f%%), boot %v",
		g.suite, g.kernel, g.total.Round(time.Second), g.limit, 100*g.total.Seconds()/g.limit.Seconds(), g.boot.Round(100*time.Millisecond))
	if g.overHalf() {
		b.WriteString("; MORE THAN HALF ITS LIMIT")
	}
	b.WriteString("\n")
	width := 0
	for _, p := range g.packages {
		width = max(width, len(p.rel))
	}
	for _, p := range g.packages {
		note := ""
		switch {
		case !p.started:
			note = " (did not run)"
		case !p.finished:
			note = " (did not finish)"
		}
		fmt.Fprintf(&b, "  %-*s %8v%s\n", width, p.rel, p.duration.Round(time.Second), note)
	}
	for _, o := range g.overShare {
		fmt.Fprintf(&b, "  OVER ITS SHARE: %s\n", o)
	}
	return b.String()
}

// appendDurations adds a guest's durations to DurationsEnv's file, if set.
func appendDurations(g *guestDurations) error {
	path := os.Getenv(DurationsEnv)
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("record guest durations: %w", err)
	}
	if _, err := f.WriteString(g.String()); err != nil {
		f.Close()
		return fmt.Errorf("record guest durations: %w", err)
	}
	return f.Close()
}
