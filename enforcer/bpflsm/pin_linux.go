//go:build linux

package bpflsm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/internal/percpu"
)

// Pinned state, under the pin directory (bpfPinPath):
//
//	links/<program>  one link per LSM hook: while pinned, the hook enforces
//	                 with its maps even when no daemon runs
//	counters         the per-CPU counters of those programs
//
// A starting daemon attaches its own programs next to the pinned ones (both
// enforce: there is no gap), applies its first policy set, and only then
// replaces the pins and detaches the old programs (Pin). A deliberate stop
// removes the pins (Unpin, or `kubearmor --cleanup` from ExecStopPost).

const bpfFSMagic = 0xcafe4a11

// adopt finds the programs a previous daemon left pinned at dir, so that
// they keep enforcing until Pin replaces them.
func (e *Enforcer) adopt(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(dir), &st); err != nil {
		return fmt.Errorf("pin directory %s: %w", dir, err)
	}
	if st.Type != bpfFSMagic {
		return fmt.Errorf("pin directory %s is not on a BPF file system (mount -t bpf bpf %s)", dir, filepath.Dir(dir))
	}
	if err := os.MkdirAll(filepath.Join(dir, "links"), 0o700); err != nil {
		return fmt.Errorf("create pin directory: %w", err)
	}
	e.pinDir = dir
	// Every pinned link, whatever its name: a previous version may have had
	// hooks this one has not, and those must go too once Pin runs.
	entries, err := os.ReadDir(filepath.Join(dir, "links"))
	if err != nil {
		return fmt.Errorf("read pin directory: %w", err)
	}
	for _, ent := range entries {
		path := filepath.Join(dir, "links", ent.Name())
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil {
			return fmt.Errorf("load pinned link %s: %w", path, err)
		}
		e.adopted = append(e.adopted, l)
		e.adoptedPaths = append(e.adoptedPaths, path)
	}
	if m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "counters"), nil); err == nil {
		e.adoptedCounters = m
	}
	return nil
}

// Pin makes the programs of this daemon the ones that outlive it, replacing
// what a previous daemon pinned. Call it once the first policy set is in
// force, so the new programs enforce before the old ones go.
func (e *Enforcer) Pin() error {
	if e.pinDir == "" {
		return nil
	}
	if e.adoptedCounters != nil {
		c, err := percpu.Sum(e.adoptedCounters, int(lsmKaCounterKA_CNT_MAX))
		if err == nil {
			e.log.Info("took over from pinned programs of a previous daemon",
				"programs", len(e.adopted), "their_decisions", c[lsmKaCounterKA_CNT_DECISIONS]+c[lsmKaCounterKA_CNT_FAST],
				"their_denied", c[lsmKaCounterKA_CNT_DENIED], "their_alerts_lost", c[lsmKaCounterKA_CNT_ALERT_LOST])
		}
		e.adoptedCounters.Close()
		e.adoptedCounters = nil
	}
	for _, path := range e.adoptedPaths {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("replace pin %s: %w", path, err)
		}
	}
	e.adoptedPaths = nil
	for i, name := range e.linkNames {
		path := filepath.Join(e.pinDir, "links", name)
		if err := e.links[i].Pin(path); err != nil {
			return fmt.Errorf("pin %s: %w", path, err)
		}
	}
	if e.sysLink != nil {
		if err := e.sysLink.Pin(e.sysLinkPin()); err != nil {
			return fmt.Errorf("pin sys_enter: %w", err)
		}
	}
	counters := filepath.Join(e.pinDir, "counters")
	if err := os.Remove(counters); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace pin %s: %w", counters, err)
	}
	if err := e.objs.Counters.Pin(counters); err != nil {
		return fmt.Errorf("pin %s: %w", counters, err)
	}
	// The old programs detach when their last reference goes.
	for _, l := range e.adopted {
		l.Close()
	}
	e.adopted = nil
	e.pinned = true
	return nil
}

func (e *Enforcer) sysLinkPin() string { return filepath.Join(e.pinDir, "links", "ka_sys_enter") }

// Unpin removes the pins, so that closing the enforcer detaches the
// programs: nothing stays enforcing after a deliberate stop.
func (e *Enforcer) Unpin() error {
	if e.pinDir == "" {
		return nil
	}
	e.pinned = false
	return RemovePins(e.pinDir)
}

// RemovePins removes everything under a pin directory and the directory
// itself. Programs whose links were pinned there detach once no process
// holds them. A missing directory is not an error.
func RemovePins(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove pins %s: %w", dir, err)
	}
	return nil
}
