package vmtest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"
)

// Prepare does the suites' one-time work, so that none of it runs beside
// a guest and a cold machine's first guest has the cores to itself: it
// fetches every kernel the suites boot, builds their Debian roots and the
// tools, and compiles their test binaries and programs into the go build
// cache (RunTests then only links them). logf is told what each step took.
func Prepare(ctx context.Context, logf func(format string, args ...any), tools []GoTool, suites ...Suite) error {
	cache := CacheDir()
	var kernels []string
	for _, s := range suites {
		for _, k := range s.kernelPackages() {
			if !slices.Contains(kernels, k) {
				kernels = append(kernels, k)
			}
		}
	}
	step := func(what string, do func() (string, error)) error {
		begin := time.Now()
		how, err := do()
		if err != nil {
			return fmt.Errorf("prepare %s: %w", what, err)
		}
		logf("%s: %s in %v", what, how, time.Since(begin).Round(100*time.Millisecond))
		return nil
	}
	cached := func(fresh bool, verb string) string {
		if fresh {
			return verb
		}
		return "cached"
	}
	for _, kp := range kernels {
		if err := step("kernel "+kp, func() (string, error) {
			k, err := FetchKernel(ctx, cache, kp)
			return cached(k.Downloaded, "downloaded"), err
		}); err != nil {
			return err
		}
	}
	for _, s := range suites {
		if s.Root == nil {
			continue
		}
		if err := step("Debian "+s.Root.Suite+" root", func() (string, error) {
			_, built, err := FetchDebianRoot(ctx, cache, *s.Root)
			return cached(built, "built with debootstrap"), err
		}); err != nil {
			return err
		}
	}
	for _, g := range tools {
		if err := step(g.Name()+" "+g.Version, func() (string, error) {
			_, built, err := g.Fetch(ctx, cache)
			return cached(built, "built"), err
		}); err != nil {
			return err
		}
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "vmtest-prepare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	for _, s := range suites {
		if err := step("test binaries of "+s.Name, func() (string, error) {
			pkgs, err := listPackages(ctx, root, packagePatterns(s.Packages))
			if err != nil {
				return "", err
			}
			_, err = buildAll(ctx, root, work, s, pkgs)
			return fmt.Sprintf("compiled (test packages %d, programs %d)", len(pkgs), len(s.Binaries)), err
		}); err != nil {
			return err
		}
	}
	return nil
}
