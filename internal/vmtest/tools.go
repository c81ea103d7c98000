package vmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// GoTool is a program a test suite needs that Debian does not package: it
// is built once with go install and cached under
// CacheDir()/tools/<name>-<version>/, keyed by version.
type GoTool struct {
	Package string // main package, e.g. github.com/sigstore/cosign/v2/cmd/cosign
	Version string // module version, e.g. v2.6.5
}

// Cosign verifies the packages' sigstore bundles (packaging/build).
func Cosign() GoTool {
	return GoTool{Package: "github.com/sigstore/cosign/v2/cmd/cosign", Version: "v2.6.5"}
}

// Name is the program's name.
func (g GoTool) Name() string { return path.Base(g.Package) }

// Fetch returns the tool's path: on PATH if installed, else in the cache,
// building it there on first use (cosign: a few minutes).
func (g GoTool) Fetch(ctx context.Context, cacheDir string) (bin string, built bool, err error) {
	if p, err := exec.LookPath(g.Name()); err == nil {
		return p, false, nil
	}
	dir := filepath.Join(cacheDir, "tools", g.Name()+"-"+g.Version)
	bin = filepath.Join(dir, g.Name())
	if _, err := os.Stat(bin); err == nil {
		return bin, false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, fmt.Errorf("build %s: %w", g.Name(), err)
	}
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", false, fmt.Errorf("build %s: %w", g.Name(), err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "install", g.Package+"@"+g.Version)
	cmd.Dir = tmp // outside the module: go install pkg@version resolves on its own
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", false, fmt.Errorf("go install %s@%s: %w\n%s", g.Package, g.Version, err, strings.TrimSpace(string(out)))
	}
	// Renamed into place whole: a build cut short leaves no half a binary.
	if err := os.Rename(filepath.Join(tmp, g.Name()), bin); err != nil {
		return "", false, fmt.Errorf("store %s: %w", g.Name(), err)
	}
	return bin, true, nil
}
