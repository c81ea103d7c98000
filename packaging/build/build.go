package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the packagers
	_ "github.com/goreleaser/nfpm/v2/rpm"
)

// Options say what to build.
type Options struct {
	Version, Arch string
	Bin, Out      string
	Key           string // armored private key; "" for unsigned
	Config        string
	// Date stamps the changelog; zero: SOURCE_DATE_EPOCH, else now.
	Date time.Time
}

// Formats are the package formats built.
var Formats = []string{"deb", "rpm"}

// Build writes the packages, SHA256SUMS and (with a key) SHA256SUMS.asc
// into o.Out, and returns their paths.
func Build(o Options) ([]string, error) {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	changelog, err := writeChangelog(o)
	if err != nil {
		return nil, err
	}
	defer os.Remove(changelog)
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
	var out []string
	for _, format := range Formats {
		p, err := pack(cfg, format, o.Out)
		if err != nil {
			return out, err
		}
		out = append(out, p)
	}
	sums, err := writeSums(o.Out, out)
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

// writeChangelog writes the one-entry changelog nfpm turns into the deb's
// changelog.Debian.gz and the rpm's %changelog.
func writeChangelog(o Options) (string, error) {
	date := o.Date
	if date.IsZero() {
		date = time.Now().UTC()
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			var sec int64
			if _, err := fmt.Sscan(s, &sec); err == nil {
				date = time.Unix(sec, 0).UTC()
			}
		}
	}
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
`, o.Version+"-1", date.Format(time.RFC3339), o.Version)
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

// GenerateKey writes a new RSA key pair, unprotected, as dir/private.asc and
// dir/public.asc.
func GenerateKey(dir, name string, now time.Time) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
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
