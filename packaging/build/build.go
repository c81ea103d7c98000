package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the packagers
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm"
)

// Options say what to build.
type Options struct {
	Version, Arch string
	Bin, Out      string
	Key           string // armored private key; "" for unsigned
	// CosignKey signs every artifact into a cosign bundle (<file>.bundle);
	// "" for none. See readCosignKey; its password is in COSIGN_PASSWORD.
	CosignKey string
	Config    string
	// Date stamps the changelog; zero: SOURCE_DATE_EPOCH, else now.
	Date time.Time
}

// Formats are the package formats built.
var Formats = []string{"deb", "rpm"}

// Build writes the packages, SHA256SUMS and (with a key) SHA256SUMS.asc
// into o.Out, then (with a cosign key) a cosign bundle of each of the
// packages and SHA256SUMS, and returns their paths.
func Build(o Options) ([]string, error) {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	date := buildDate(o)
	changelog, err := writeChangelog(o.Version, date)
	if err != nil {
		return nil, err
	}
	defer os.Remove(changelog)
	manDir, err := os.MkdirTemp("", "kubearmor-man-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(manDir)
	pages, err := writeManuals(o.Bin, manDir, o.Version, date)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{"VERSION": o.Version, "ARCH": o.Arch, "BIN": o.Bin, "SIGNING_KEY": o.Key}
	cfg, err := nfpm.ParseFileWithEnvMapping(o.Config, func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return os.Getenv(k)
	})
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", o.Config, err)
	}
	cfg.Changelog = changelog
	for _, dst := range sortedKeys(pages) {
		cfg.Contents = append(cfg.Contents, &files.Content{Source: pages[dst], Destination: dst, FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	}
	var pkgs []string
	for _, format := range Formats {
		p, err := pack(cfg, format, o.Out)
		if err != nil {
			return pkgs, err
		}
		pkgs = append(pkgs, p)
	}
	out := slices.Clone(pkgs)
	sums, err := writeSums(o.Out, pkgs)
	if err != nil {
		return out, err
	}
	out = append(out, sums)
	if o.Key != "" {
		asc, err := signDetached(o.Key, os.Getenv("NFPM_PASSPHRASE"), sums)
		if err != nil {
			return out, err
		}
		out = append(out, asc)
	}
	if o.CosignKey != "" {
		key, err := readCosignKey(o.CosignKey, os.Getenv("COSIGN_PASSWORD"))
		if err != nil {
			return out, err
		}
		for _, f := range append(pkgs, sums) {
			bundle, err := writeCosignBundle(key, f)
			if err != nil {
				return out, err
			}
			out = append(out, bundle)
		}
	}
	return out, nil
}

func pack(cfg nfpm.Config, format, dir string) (string, error) {
	info, err := cfg.Get(format)
	if err != nil {
		return "", fmt.Errorf("%s: %w", format, err)
	}
	info = nfpm.WithDefaults(info)
	pkg, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, pkg.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info.Target = path
	if err := pkg.Package(info, f); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("build %s: %w", path, err)
	}
	return path, f.Close()
}

// buildDate stamps the changelog and the manual pages: o.Date, else
// SOURCE_DATE_EPOCH, else now.
func buildDate(o Options) time.Time {
	if !o.Date.IsZero() {
		return o.Date
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscan(s, &sec); err == nil {
			return time.Unix(sec, 0).UTC()
		}
	}
	return time.Now().UTC()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeChangelog writes the one-entry changelog nfpm turns into the deb's
// changelog.Debian.gz and the rpm's %changelog.
func writeChangelog(version string, date time.Time) (string, error) {
	f, err := os.CreateTemp("", "kubearmor-changelog-*.yaml")
	if err != nil {
		return "", err
	}
	defer f.Close()
	fmt.Fprintf(f, `- semver: %q
  date: %q
  packager: "kubearmor-host maintainers <kubearmor-host@users.noreply.github.com>"
  deb:
    urgency: medium
    distributions: [stable]
  changes:
    - note: "Release %s."
`, version+"-1", date.Format(time.RFC3339), version)
	return f.Name(), f.Close()
}

// writeSums writes SHA256SUMS for files, in sha256sum's format.
func writeSums(dir string, files []string) (string, error) {
	var lines []string
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
		lines = append(lines, hex.EncodeToString(h.Sum(nil))+"  "+filepath.Base(p))
	}
	sort.Strings(lines)
	path := filepath.Join(dir, "SHA256SUMS")
	return path, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// readKey reads an armored private key, decrypting it with passphrase if
// it is protected.
func readKey(path, passphrase string) (*openpgp.Entity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := openpgp.ReadArmoredKeyRing(f)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	if len(ents) != 1 || ents[0].PrivateKey == nil {
		return nil, fmt.Errorf("key %s: want one private key, found %d entities", path, len(ents))
	}
	e := ents[0]
	if e.PrivateKey.Encrypted {
		if err := e.PrivateKey.Decrypt([]byte(passphrase)); err != nil {
			return nil, fmt.Errorf("key %s: %w", path, err)
		}
	}
	return e, nil
}

// signDetached writes path.asc, an armored detached signature of path.
func signDetached(key, passphrase, path string) (string, error) {
	e, err := readKey(key, passphrase)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, e, bytes.NewReader(data), nil); err != nil {
		return "", fmt.Errorf("sign %s: %w", path, err)
	}
	asc := path + ".asc"
	return asc, os.WriteFile(asc, sig.Bytes(), 0o644)
}

// GenerateKey writes new key pairs, unprotected: OpenPGP (RSA) as
// dir/private.asc and dir/public.asc, cosign's (ECDSA P-256) as
// dir/cosign.key and dir/cosign.pub.
func GenerateKey(dir, name string, now time.Time) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := generateCosignKey(dir); err != nil {
		return err
	}
	cfg := &packet.Config{RSABits: 3072, Time: func() time.Time { return now }}
	e, err := openpgp.NewEntity(name, "", "kubearmor-host@users.noreply.github.com", cfg)
	if err != nil {
		return err
	}
	write := func(file, blockType string, serialize func(io.Writer) error, mode os.FileMode) error {
		var b bytes.Buffer
		w, err := armor.Encode(&b, blockType, nil)
		if err != nil {
			return err
		}
		if err := serialize(w); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, file), b.Bytes(), mode)
	}
	if err := write("private.asc", openpgp.PrivateKeyType, func(w io.Writer) error { return e.SerializePrivate(w, nil) }, 0o600); err != nil {
		return err
	}
	return write("public.asc", openpgp.PublicKeyType, e.Serialize, 0o644)
}
