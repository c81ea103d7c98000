package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubearmor/kubearmor-host/internal/vmtest"
)

// readmeSection is the README section whose shell block tells users how to
// verify and install the packages; the tests run exactly those lines.
const readmeSection = "## Packages, and how to verify them"

// readmeInstructions returns the commands of the README's verify-and-install
// block, without sudo (the tests are root): the apt lines, which need a
// Debian system, apart from the rest.
func readmeInstructions(readme string) (host, apt []string, err error) {
	f, err := os.Open(readme)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	section, block, done := false, false, false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan() && !done; n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			section = line == readmeSection
		case section && !block && line == "```sh":
			block = true
		case block && line == "```":
			done = true
		case block:
			cmd := strings.TrimSpace(line)
			if cmd == "" || strings.HasPrefix(cmd, "#") {
				continue
			}
			cmd = strings.TrimPrefix(cmd, "sudo ")
			if strings.HasPrefix(cmd, "apt ") {
				apt = append(apt, cmd)
			} else {
				host = append(host, cmd)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if !done || len(host) == 0 || len(apt) == 0 {
		return nil, nil, fmt.Errorf("%s: no ```sh block with verify and apt lines under %q", readme, readmeSection)
	}
	return host, apt, nil
}

// TestSystem installs the deb, as the README says, on Debian 12 booted
// with systemd as PID 1 in a QEMU guest (bookworm's own kernel), and runs
// TestInstalledSystem there: the service, its sandbox, the journal, reload,
// a killed daemon, removal and purge.
func TestSystem(t *testing.T) {
	if reason := vmtest.SkipReason(); reason != "" {
		t.Skip("system test skipped: " + reason)
	}
	b := buildPackages(t)
	_, apt, err := readmeInstructions(filepath.Join(b.root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	install := filepath.Join(b.dist, "install.sh")
	if err := os.WriteFile(install, []byte("set -ex\n"+strings.Join(apt, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	suite := vmtest.SystemSuite()
	suite.Files = []vmtest.File{{HostPath: b.dist, GuestPath: guestDist}}
	vmtest.RunTests(t, suite)
}
