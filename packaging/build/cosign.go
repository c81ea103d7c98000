package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/scrypt"
)

// PEM block types of the private keys cosign writes (generate-key-pair):
// the current one and the one before v2.
const (
	cosignKeyType    = "ENCRYPTED SIGSTORE PRIVATE KEY"
	cosignKeyTypeOld = "ENCRYPTED COSIGN PRIVATE KEY"
)

// readCosignKey reads the private key cosign bundles are signed with: one
// made by cosign generate-key-pair (decrypted with password, cosign's
// COSIGN_PASSWORD), or an unencrypted PKCS#8 or SEC 1 EC key in PEM, as
// -gen-key writes.
func readCosignKey(path, password string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("cosign key %s: no PEM block", path)
	}
	der := block.Bytes
	switch block.Type {
	case cosignKeyType, cosignKeyTypeOld:
		if der, err = decryptCosignKey(block.Bytes, password); err != nil {
			return nil, fmt.Errorf("cosign key %s: %w", path, err)
		}
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("cosign key %s: %w", path, err)
		}
		return k, nil
	case "PRIVATE KEY":
	default:
		return nil, fmt.Errorf("cosign key %s: PEM block %q is not a private key", path, block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("cosign key %s: %w", path, err)
	}
	signer, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("cosign key %s: a %T, want an ECDSA key", path, k)
	}
	return signer, nil
}

// encryptedKey is the JSON inside cosign's encrypted key PEM block: a
// PKCS#8 key sealed with NaCl secretbox under a key derived with scrypt.
type encryptedKey struct {
	KDF struct {
		Name   string `json:"name"`
		Params struct {
			N, R, P int
		} `json:"params"`
		Salt []byte `json:"salt"`
	} `json:"kdf"`
	Cipher struct {
		Name  string `json:"name"`
		Nonce []byte `json:"nonce"`
	} `json:"cipher"`
	Ciphertext []byte `json:"ciphertext"`
}

func decryptCosignKey(b []byte, password string) ([]byte, error) {
	var k encryptedKey
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, err
	}
	if k.KDF.Name != "scrypt" || k.Cipher.Name != "nacl/secretbox" || len(k.Cipher.Nonce) != 24 {
		return nil, fmt.Errorf("unsupported encryption %s + %s", k.KDF.Name, k.Cipher.Name)
	}
	sealKey, err := scrypt.Key([]byte(password), k.KDF.Salt, k.KDF.Params.N, k.KDF.Params.R, k.KDF.Params.P, 32)
	if err != nil {
		return nil, err
	}
	var nonce [24]byte
	var key [32]byte
	copy(nonce[:], k.Cipher.Nonce)
	copy(key[:], sealKey)
	der, ok := secretbox.Open(nil, k.Ciphertext, &nonce, &key)
	if !ok {
		return nil, errors.New("wrong password (COSIGN_PASSWORD)")
	}
	return der, nil
}

// cosignBundle is what cosign sign-blob --bundle writes for a key-based
// signature made offline: no certificate, no transparency-log entry.
// cosign verify-blob --key --bundle --insecure-ignore-tlog=true checks it.
type cosignBundle struct {
	Base64Signature string `json:"base64Signature"`
}

// writeCosignBundle signs path (ECDSA over its SHA-256, ASN.1 encoded, as
// cosign does) and writes path.bundle.
func writeCosignBundle(key crypto.Signer, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	digest := sha256.Sum256(data)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("cosign-sign %s: %w", path, err)
	}
	b, err := json.Marshal(cosignBundle{Base64Signature: base64.StdEncoding.EncodeToString(sig)})
	if err != nil {
		return "", err
	}
	bundle := path + ".bundle"
	return bundle, os.WriteFile(bundle, b, 0o644)
}

// generateCosignKey writes a new ECDSA P-256 key pair, unencrypted, as
// dir/cosign.key and dir/cosign.pub (the public key as cosign writes it).
func generateCosignKey(dir string) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	priv, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cosign.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "cosign.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}
