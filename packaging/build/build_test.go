package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
	"github.com/kubearmor/kubearmor-host/internal/vmtest"
)

// need returns the path of a tool the check uses, or fails: the suite's
// setup (make deps) installs them all.
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is not installed (apt-get install %s; make deps does)", tool, pkg)
	}
	return p
}

func sh(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// built is what buildPackages made.
type built struct {
	root     string // the repository
	dist     string // the packages, SHA256SUMS and SHA256SUMS.asc
	deb, rpm string
	public   string // the armored public key they are signed with
	// cosignPublic is the key the cosign bundles verify with.
	cosignPublic string
}

// buildPackages builds both packages as make package does, signed with a
// throwaway key.
func buildPackages(t *testing.T) built {
	for tool, pkg := range map[string]string{"dpkg-deb": "dpkg", "rpm": "rpm", "gpg": "gnupg", "lintian": "lintian", "ar": "binutils", "sha256sum": "coreutils"} {
		need(t, tool, pkg)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin, out, keys := filepath.Join(tmp, "bin"), filepath.Join(tmp, "dist"), filepath.Join(tmp, "keys")
	for _, c := range []string{"kubearmor", "karmor"} {
		// As make build VERSION=0.1.0 does.
		sh(t, root, []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=0.1.0", "-o", filepath.Join(bin, c), "./cmd/"+c)
	}
	if err := GenerateKey(keys, "kubearmor-host test signing key", time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	files, err := Build(Options{Version: "0.1.0", Arch: "amd64", Bin: bin, Out: out, Key: filepath.Join(keys, "private.asc"),
		CosignKey: filepath.Join(keys, "cosign.key"), Config: "packaging/nfpm.yaml", Date: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	b := built{root: root, dist: out, deb: filepath.Join(out, "kubearmor_0.1.0-1_amd64.deb"), rpm: filepath.Join(out, "kubearmor-0.1.0-1.x86_64.rpm"),
		public: filepath.Join(keys, "public.asc"), cosignPublic: filepath.Join(keys, "cosign.pub")}
	sums := filepath.Join(out, "SHA256SUMS")
	want := []string{b.deb, b.rpm, sums, sums + ".asc", b.deb + ".bundle", b.rpm + ".bundle", sums + ".bundle"}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Fatalf("built %v, want %v", files, want)
	}
	return b
}

// TestPackages builds both packages, signed with a throwaway key, and
// checks them with the tools a user and a distribution would use.
func TestPackages(t *testing.T) {
	if testutils.InGuest() {
		t.Skip("a host test: it builds the packages that TestSystem's guest installs")
	}
	cosign := cosignBinary(t)
	b := buildPackages(t)
	tmp := t.TempDir()
	out, deb, rpm := b.dist, b.deb, b.rpm
	gnupg := filepath.Join(tmp, "gnupg")
	os.Mkdir(gnupg, 0o700)
	gpgEnv := []string{"GNUPGHOME=" + gnupg}
	sh(t, tmp, gpgEnv, "gpg", "--batch", "--import", b.public)

	t.Run("readme", func(t *testing.T) {
		// What the README tells a user to run, but apt install, which
		// TestSystem runs on a real Debian system: in a copy of the
		// release, with the keys as release.asc and cosign.pub, keyrings
		// of its own (rpm's through ~/.rpmmacros) and without sudo.
		cmds, _, err := readmeInstructions(filepath.Join(b.root, "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		dir, home := filepath.Join(tmp, "readme"), filepath.Join(tmp, "home")
		sh(t, tmp, nil, "cp", "-a", out, dir)
		testutils.CopyFile(t, b.public, filepath.Join(dir, "release.asc"), 0o644)
		testutils.CopyFile(t, b.cosignPublic, filepath.Join(dir, "cosign.pub"), 0o644)
		os.MkdirAll(filepath.Join(home, ".gnupg"), 0o700)
		os.WriteFile(filepath.Join(home, ".rpmmacros"), []byte("%_dbpath "+filepath.Join(home, "rpmdb")+"\n"), 0o644)
		env := []string{"HOME=" + home, "GNUPGHOME=" + filepath.Join(home, ".gnupg"), "PATH=" + filepath.Dir(cosign) + ":" + os.Getenv("PATH")}
		for _, c := range cmds {
			t.Logf("$ %s\n%s", c, sh(t, dir, env, "sh", "-ec", c))
		}
	})

	t.Run("cosign", func(t *testing.T) {
		// Every bundle verifies with the real cosign, and only for its
		// own file; and a key made by cosign itself (encrypted with
		// COSIGN_PASSWORD) signs as well as -gen-key's.
		verify := func(key, bundle, file string) error {
			cmd := exec.Command(cosign, "verify-blob", "--key", key, "--bundle", bundle, "--insecure-ignore-tlog=true", file)
			cmd.Env = append(os.Environ(), "TUF_ROOT="+filepath.Join(tmp, "tuf"))
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Verified OK") {
				return fmt.Errorf("cosign verify-blob --bundle %s %s: %v\n%s", filepath.Base(bundle), filepath.Base(file), err, out)
			}
			return nil
		}
		for _, f := range []string{deb, rpm, filepath.Join(out, "SHA256SUMS")} {
			if err := verify(b.cosignPublic, f+".bundle", f); err != nil {
				t.Error(err)
			}
		}
		if err := verify(b.cosignPublic, deb+".bundle", rpm); err == nil {
			t.Error("the deb's bundle verifies the rpm")
		}
		keys := filepath.Join(tmp, "cosign-keys")
		os.Mkdir(keys, 0o700)
		sh(t, keys, []string{"COSIGN_PASSWORD=correct horse"}, cosign, "generate-key-pair")
		if _, err := readCosignKey(filepath.Join(keys, "cosign.key"), "wrong"); err == nil {
			t.Error("a cosign key opened with the wrong password")
		}
		key, err := readCosignKey(filepath.Join(keys, "cosign.key"), "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		blob := filepath.Join(keys, "blob")
		os.WriteFile(blob, []byte("kubearmor"), 0o644)
		bundle, err := writeCosignBundle(key, blob)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(filepath.Join(keys, "cosign.pub"), bundle, blob); err != nil {
			t.Error(err)
		}
	})

	t.Run("checksums", func(t *testing.T) {
		sh(t, out, nil, "sha256sum", "--check", "--strict", "SHA256SUMS")
		sh(t, out, gpgEnv, "gpg", "--batch", "--verify", "SHA256SUMS.asc", "SHA256SUMS")
	})

	t.Run("deb", func(t *testing.T) {
		if got := sh(t, tmp, nil, "dpkg-deb", "--field", deb, "Package", "Version", "Architecture", "Section"); got !=
			"Package: kubearmor\nVersion: 0.1.0-1\nArchitecture: amd64\nSection: admin\n" {
			t.Errorf("control fields:\n%s", got)
		}
		contents := sh(t, tmp, nil, "dpkg-deb", "--contents", deb)
		for _, re := range []string{
			`-rwxr-xr-x root/root .* \./usr/bin/kubearmor\n`,
			`-rwxr-xr-x root/root .* \./usr/bin/karmor\n`,
			`-rw-r--r-- root/root .* \./usr/lib/systemd/system/kubearmor\.service\n`,
			`drwxr-x--- root/root .* \./etc/kubearmor/policies/\n`,
			`-rw-r--r-- root/root .* \./etc/kubearmor/kubearmor\.yaml\n`,
			`-rw-r--r-- root/root .* \./etc/kubearmor/policies/block-sleep\.yaml\.example\n`,
			`-rw-r--r-- root/root .* \./usr/share/doc/kubearmor/copyright\n`,
			`-rw-r--r-- (root/root|0/0) .* \./usr/share/doc/kubearmor/changelog\.Debian\.gz\n`,
			`-rw-r--r-- root/root .* \./usr/share/man/man8/kubearmor\.8\.gz\n`,
			`-rw-r--r-- root/root .* \./usr/share/man/man1/karmor\.1\.gz\n`,
		} {
			if !regexp.MustCompile(re).MatchString(contents) {
				t.Errorf("deb contents lack %s:\n%s", re, contents)
			}
		}
		ctrl := filepath.Join(tmp, "control")
		sh(t, tmp, nil, "dpkg-deb", "--control", deb, ctrl)
		conffiles, err := os.ReadFile(filepath.Join(ctrl, "conffiles"))
		if err != nil || !strings.Contains(string(conffiles), "/etc/kubearmor/kubearmor.yaml\n") {
			t.Errorf("conffiles: %q, %v", conffiles, err)
		}
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			sh(t, tmp, nil, "sh", "-n", filepath.Join(ctrl, s))
		}
		// The origin signature covers the members in order, as gpg
		// checks it by hand (see the README).
		members := filepath.Join(tmp, "members")
		os.Mkdir(members, 0o755)
		sh(t, members, nil, "ar", "x", deb)
		names := strings.Fields(sh(t, members, nil, "ar", "t", deb))
		if len(names) != 4 || names[3] != "_gpgorigin" {
			t.Fatalf("deb members %v, want debian-binary, control, data and _gpgorigin", names)
		}
		var signed bytes.Buffer
		for _, n := range names[:3] {
			b, err := os.ReadFile(filepath.Join(members, n))
			if err != nil {
				t.Fatal(err)
			}
			signed.Write(b)
		}
		os.WriteFile(filepath.Join(tmp, "signed"), signed.Bytes(), 0o644)
		sh(t, tmp, gpgEnv, "gpg", "--batch", "--verify", filepath.Join(members, "_gpgorigin"), filepath.Join(tmp, "signed"))
		// Distribution checks: no errors (warnings are listed in the log).
		t.Log(sh(t, tmp, nil, "lintian", "--fail-on", "error", "--tag-display-limit", "0", deb))
	})

	t.Run("rpm", func(t *testing.T) {
		db := filepath.Join(tmp, "rpmdb")
		sh(t, tmp, nil, "rpm", "--dbpath", db, "--initdb")
		sh(t, tmp, nil, "rpm", "--dbpath", db, "--import", b.public)
		if got := sh(t, tmp, nil, "rpm", "--dbpath", db, "--checksig", rpm); !strings.Contains(got, "digests signatures OK") {
			t.Errorf("rpm --checksig: %s", got)
		}
		list := sh(t, tmp, nil, "rpm", "-qlp", rpm)
		for _, f := range []string{"/usr/bin/kubearmor", "/usr/bin/karmor", "/usr/lib/systemd/system/kubearmor.service",
			"/etc/kubearmor/kubearmor.yaml", "/etc/kubearmor/policies", "/usr/share/doc/kubearmor/copyright"} {
			if !strings.Contains(list, f+"\n") {
				t.Errorf("rpm lacks %s:\n%s", f, list)
			}
		}
		if strings.Contains(list, "lintian") {
			t.Errorf("the rpm carries Debian's lintian overrides:\n%s", list)
		}
		if cfg := sh(t, tmp, nil, "rpm", "-qcp", rpm); !strings.Contains(cfg, "/etc/kubearmor/kubearmor.yaml\n") {
			t.Errorf("rpm config files: %s", cfg)
		}
		scripts := sh(t, tmp, nil, "rpm", "-qp", "--scripts", rpm)
		for _, part := range regexp.MustCompile(`(?m)^\S+ scriptlet \(using /bin/sh\):\n`).Split(scripts, -1)[1:] {
			f := filepath.Join(tmp, "scriptlet")
			os.WriteFile(f, []byte(part), 0o644)
			sh(t, tmp, nil, "sh", "-n", f)
		}
		if n := strings.Count(scripts, "scriptlet (using /bin/sh)"); n != 3 {
			t.Errorf("%d scriptlets, want 3 (post, preun, postun):\n%s", n, scripts)
		}
		// Installed into a scratch root: the files land where they
		// should, with their modes (scriptlets would need a shell there).
		scratch := filepath.Join(tmp, "scratch")
		sh(t, tmp, nil, "rpm", "--root", scratch, "--nodeps", "--noscripts", "-i", rpm)
		for f, mode := range map[string]os.FileMode{"usr/bin/kubearmor": 0o755, "etc/kubearmor/policies": os.ModeDir | 0o750,
			"etc/kubearmor/kubearmor.yaml": 0o644} {
			fi, err := os.Stat(filepath.Join(scratch, f))
			if err != nil {
				t.Errorf("%s in the scratch root: %v", f, err)
			} else if fi.Mode() != mode {
				t.Errorf("%s in the scratch root: mode %v, want %v", f, fi.Mode(), mode)
			}
		}
	})
}

// cosignBinary returns cosign from PATH or the cache, building it on first
// use (vmtest.Cosign; make test's prepare step has done that already).
func cosignBinary(t *testing.T) string {
	t.Helper()
	begin := time.Now()
	bin, built, err := vmtest.Cosign().Fetch(t.Context(), vmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	if built {
		t.Logf("built cosign %s in %v: %s", vmtest.Cosign().Version, time.Since(begin).Round(time.Second), bin)
	}
	return bin
}
