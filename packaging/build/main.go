// Command build makes the kubearmor deb and rpm from packaging/nfpm.yaml,
// signed when given an OpenPGP key, with a SHA256SUMS file and its
// detached signature, and cosign bundles when given a cosign key. `make
// package` runs it from the repository's root:
//
//	go run ./packaging/build -version 0.1.0 -bin bin -out dist [-key private.asc] [-cosign-key cosign.key]
//
// With -gen-key DIR it writes new throwaway key pairs instead (DIR/
// private.asc and public.asc, DIR/cosign.key and cosign.pub), for CI and
// tests; a release brings its own.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	var o Options
	var genKey string
	flag.StringVar(&o.Version, "version", "", "package version, e.g. 0.1.0")
	flag.StringVar(&o.Arch, "arch", "amd64", "architecture (Go's name)")
	flag.StringVar(&o.Bin, "bin", "bin", "directory holding kubearmor and karmor")
	flag.StringVar(&o.Out, "out", "dist", "directory to write the packages and checksums to")
	flag.StringVar(&o.Key, "key", "", "armored OpenPGP private key to sign with (passphrase in $NFPM_PASSPHRASE); empty: unsigned")
	flag.StringVar(&o.CosignKey, "cosign-key", "", "private key to write cosign bundles with (cosign generate-key-pair's, password in $COSIGN_PASSWORD, or a PEM EC key); empty: none")
	flag.StringVar(&o.Config, "config", "packaging/nfpm.yaml", "the nfpm definition")
	flag.StringVar(&genKey, "gen-key", "", "write a new throwaway key pair into this directory and exit")
	flag.Parse()
	if err := run(o, genKey); err != nil {
		fmt.Fprintln(os.Stderr, "packaging/build:", err)
		os.Exit(1)
	}
}

func run(o Options, genKey string) error {
	if genKey != "" {
		return GenerateKey(genKey, "kubearmor-host test signing key", time.Now())
	}
	if o.Version == "" {
		return fmt.Errorf("-version is required")
	}
	files, err := Build(o)
	for _, f := range files {
		fmt.Println(f)
	}
	return err
}
