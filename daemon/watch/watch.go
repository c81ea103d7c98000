// Package watch tells the daemon when to rescan the policy directory.
//
// It watches the directory itself, not the files in it, because editors and
// package managers replace files by writing a temporary one and renaming it
// over the old. Changes are debounced for the whole directory: a burst of
// events becomes one Trigger after a quiet period. Hidden, temporary and
// backup files are ignored. An inotify queue overflow, which loses events,
// becomes a Trigger too, and so does Rescan (the daemon calls it on SIGHUP).
// The directory may be missing at start or removed later: the watcher
// retries with backoff and triggers when it is back.
//
// A Trigger carries the names that changed for logging only; the consumer
// always rescans the whole directory, so coalescing triggers loses nothing.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Trigger asks the consumer to rescan the directory.
type Trigger struct {
	// Reason says why, for the log: "watch started", "files changed",
	// "event queue overflow", "directory removed", or what Rescan was given;
	// several joined by "; " when triggers were coalesced.
	Reason string
	// Paths are base names that changed, sorted, at most maxPaths of them.
	Paths []string
}

// Reasons the watcher gives.
const (
	ReasonStarted  = "watch started"
	ReasonChanged  = "files changed"
	ReasonOverflow = "event queue overflow"
	ReasonRemoved  = "directory removed"
)

const (
	maxPaths = 64 // names kept per trigger; enough to log, bounded under a flood
	minRetry = 250 * time.Millisecond
	maxRetry = 5 * time.Second
)

// Watcher watches one directory. Run it once; read Triggers meanwhile.
type Watcher struct {
	dir      string
	debounce time.Duration
	maxWait  time.Duration // a steady trickle of events still triggers this often
	logger   *slog.Logger
	out      chan Trigger
	rescan   chan string

	minRetry, maxRetry time.Duration
	newFS              func() (fsWatcher, error) // fsnotify; a fake in tests
}

// New returns a watcher for dir that triggers once no relevant event has
// arrived for debounce (and at least every 10 debounce periods, at least
// 1s, while events keep coming). A nil logger discards.
func New(dir string, debounce time.Duration, logger *slog.Logger) *Watcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	debounce = max(debounce, 0)
	return &Watcher{
		dir:      filepath.Clean(dir),
		debounce: debounce,
		maxWait:  max(10*debounce, time.Second),
		logger:   logger.With("dir", filepath.Clean(dir)),
		out:      make(chan Trigger),
		rescan:   make(chan string, 8),
		minRetry: minRetry,
		maxRetry: maxRetry,
		newFS:    newFSNotify,
	}
}

// Triggers returns the channel of triggers. It is closed when Run returns.
// The watcher holds at most one undelivered trigger, merging later ones into
// it, so a slow consumer never blocks the watcher nor misses a change.
func (w *Watcher) Triggers() <-chan Trigger { return w.out }

// Rescan asks for a trigger now, without waiting for the debounce period.
// It never blocks; requests made while one is pending are merged.
func (w *Watcher) Rescan(reason string) {
	select {
	case w.rescan <- reason:
	default: // a rescan is already queued; it covers this one
	}
}

// Ignored reports whether a file name is one the watcher skips: hidden
// files, editor swap and backup files, temporary files and package-manager
// leftovers, which are never policies and change often.
func Ignored(name string) bool {
	name = filepath.Base(name)
	switch {
	case name == "" || strings.HasPrefix(name, "."): // hidden, vim .x.swp, emacs .#x
		return true
	case strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#"): // emacs auto-save
		return true
	case strings.HasSuffix(name, "~"):
		return true
	}
	for _, suffix := range []string{
		".swp", ".swx", ".tmp",
		".dpkg-new", ".dpkg-old", ".dpkg-dist", ".dpkg-tmp",
		".rpmnew", ".rpmsave", ".rpmorig",
	} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// Run watches until ctx is done, then returns nil. It returns an error only
// when no inotify instance can be had at all (fs.inotify.max_user_instances).
func (w *Watcher) Run(ctx context.Context) error {
	defer close(w.out)
	fsw, err := w.newFS()
	if err != nil {
		return fmt.Errorf("watch %s: %w", w.dir, err)
	}
	defer fsw.Close()

	var (
		pending    batch  // events not yet debounced
		ready      *batch // debounced, waiting for the consumer
		watching   bool   // the directory watch is in place
		failures   int    // consecutive failed attempts to add the watch
		retryDelay = w.minRetry
		retry      = time.NewTimer(0) // the first attempt is immediate
		quiet      = time.NewTimer(time.Hour)
		first      time.Time // when the pending batch began
	)
	quiet.Stop()
	defer retry.Stop()
	defer quiet.Stop()

	// flush hands the pending batch to the consumer side.
	flush := func() {
		quiet.Stop()
		first = time.Time{}
		if pending.empty() {
			return
		}
		if ready == nil {
			ready = &batch{}
		}
		ready.merge(pending)
		pending = batch{}
	}
	// touched starts or extends the debounce period.
	touched := func() {
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		if w.debounce == 0 || now.Sub(first) >= w.maxWait {
			flush()
			return
		}
		quiet.Reset(w.debounce)
	}

	for {
		var out chan<- Trigger
		var next Trigger
		if ready != nil {
			out, next = w.out, ready.trigger()
		}
		select {
		case <-ctx.Done():
			return nil

		case <-retry.C:
			if err := w.add(fsw); err != nil {
				failures++
				// The first failure is worth a warning; the retries are not.
				if failures == 1 {
					w.logger.Warn("cannot watch policy directory; retrying until it exists", "error", err)
				} else {
					w.logger.Debug("still cannot watch policy directory", "error", err, "attempt", failures)
				}
				retry.Reset(retryDelay)
				retryDelay = min(2*retryDelay, w.maxRetry)
				continue
			}
			w.logger.Info("watching policy directory", "after_failures", failures)
			watching, failures, retryDelay = true, 0, w.minRetry
			// Anything may have changed while unwatched: rescan now.
			pending.add(ReasonStarted, "")
			flush()

		case ev, ok := <-fsw.Events():
			if !ok {
				return fmt.Errorf("watch %s: event channel closed", w.dir)
			}
			if filepath.Clean(ev.Name) == w.dir {
				if watching && ev.Has(fsnotify.Remove|fsnotify.Rename) {
					// fsnotify drops the watch on delete or move; make sure,
					// then wait for the directory to come back.
					_ = fsw.Remove(w.dir)
					watching = false
					w.logger.Warn("policy directory removed or moved away; waiting for it to come back", "op", ev.Op.String())
					pending.add(ReasonRemoved, "")
					touched()
					retry.Reset(w.minRetry)
				}
				continue
			}
			name := filepath.Base(ev.Name)
			if Ignored(name) {
				continue
			}
			pending.add(ReasonChanged, name)
			touched()

		case err, ok := <-fsw.Errors():
			if !ok {
				return fmt.Errorf("watch %s: error channel closed", w.dir)
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.logger.Warn("inotify queue overflowed; events were lost, rescanning everything")
				pending.add(ReasonOverflow, "")
				touched()
				continue
			}
			w.logger.Warn("policy directory watch error", "error", err)

		case reason := <-w.rescan:
			pending.add(reason, "")
			flush()

		case <-quiet.C:
			flush()

		case out <- next:
			ready = nil
		}
	}
}

// add puts the watch on the directory, refusing a non-directory: inotify
// would happily watch a file of that name and miss every policy.
func (w *Watcher) add(fsw fsWatcher) error {
	fi, err := os.Stat(w.dir)
	if err != nil {
		return fmt.Errorf("watch %s: %w", w.dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("watch %s: not a directory", w.dir)
	}
	if err := fsw.Add(w.dir); err != nil {
		return fmt.Errorf("watch %s: %w", w.dir, err)
	}
	return nil
}

// batch accumulates reasons and names, both de-duplicated.
type batch struct {
	reasons []string
	paths   []string
}

func (b *batch) empty() bool { return len(b.reasons) == 0 }

func (b *batch) add(reason, path string) {
	if reason != "" && !slices.Contains(b.reasons, reason) {
		b.reasons = append(b.reasons, reason)
	}
	if path != "" && len(b.paths) < maxPaths && !slices.Contains(b.paths, path) {
		b.paths = append(b.paths, path)
	}
}

func (b *batch) merge(o batch) {
	for _, r := range o.reasons {
		b.add(r, "")
	}
	for _, p := range o.paths {
		b.add("", p)
	}
}

func (b *batch) trigger() Trigger {
	paths := slices.Clone(b.paths)
	slices.Sort(paths)
	return Trigger{Reason: strings.Join(b.reasons, "; "), Paths: paths}
}

// fsWatcher is the part of fsnotify.Watcher the loop uses.
type fsWatcher interface {
	Add(name string) error
	Remove(name string) error
	Close() error
	Events() <-chan fsnotify.Event
	Errors() <-chan error
}

type fsnotifyWatcher struct{ w *fsnotify.Watcher }

func newFSNotify() (fsWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return fsnotifyWatcher{w}, nil
}

func (f fsnotifyWatcher) Add(name string) error         { return f.w.Add(name) }
func (f fsnotifyWatcher) Remove(name string) error      { return f.w.Remove(name) }
func (f fsnotifyWatcher) Close() error                  { return f.w.Close() }
func (f fsnotifyWatcher) Events() <-chan fsnotify.Event { return f.w.Events }
func (f fsnotifyWatcher) Errors() <-chan error          { return f.w.Errors }
