package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"

	"github.com/asymjwt/asymjwt"
	"golang.org/x/crypto/ssh"
)

const keygenSynopsis = "asymjwt keygen [-type ed25519|ecdsa|rsa] [-bits N] [-passphrase-file F] [-f] -o FILE"

const keygenDescription = `
Makes a key pair and writes FILE, the private key in OpenSSH format (mode
0600; encrypted when -passphrase-file is given), and FILE.pub, the public key
as an authorized_keys line, ready to be copied to a verifier's
DIR/<username>.pub. Neither file is overwritten without -f.

Key types: ed25519 (the default); ecdsa, on P-256 unless -bits is 384 or 521;
rsa, 3072 bits unless -bits says otherwise (at least 2048, at most 8192).`

// maxRSABits bounds -bits for RSA: larger keys take minutes to make and
// bring nothing.
const maxRSABits = 8192

func runKeygen(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("keygen")
	keyType := fs.String("type", "ed25519", "key `type`: ed25519, ecdsa or rsa")
	bits := fs.Int("bits", 0, "key size: 256, 384 or 521 for ecdsa (default 256); 2048 to 8192 for rsa (default 3072)")
	passFile := fs.String("passphrase-file", "", "encrypt the private key with the passphrase in `F` (one trailing newline is not part of it)")
	force := fs.Bool("f", false, "overwrite FILE and FILE.pub if they exist")
	out := fs.String("o", "", "write the private key to `FILE` and the public key to FILE.pub (required)")
	usage := func(w io.Writer) { printUsage(w, fs, keygenSynopsis, keygenDescription) }

	rest, code := parseArgs(fs, args, stdout, stderr, usage)
	if code >= 0 {
		return code
	}
	if len(rest) > 0 {
		return usageError(stderr, "keygen", "unexpected argument %q", rest[0])
	}
	if *out == "" {
		return usageError(stderr, "keygen", "-o FILE is required")
	}
	generate, err := keyGenerator(*keyType, *bits)
	if err != nil {
		return usageError(stderr, "keygen", "%v", err)
	}
	pubPath := *out + ".pub"
	if !*force {
		for _, p := range []string{*out, pubPath} {
			if _, err := os.Lstat(p); err == nil {
				return inputError(stderr, "keygen", fmt.Errorf("%s exists; use -f to overwrite it", p))
			}
		}
	}
	var passphrase []byte
	if *passFile != "" {
		if passphrase, err = readPassphraseFile(*passFile); err != nil {
			return inputError(stderr, "keygen", err)
		}
		defer clear(passphrase)
	}

	priv, err := generate()
	if err != nil {
		return inputError(stderr, "keygen", fmt.Errorf("generating key: %w", err))
	}
	comment := keyComment(*out)
	privPEM, pubLine, err := marshalKeyPair(priv, comment, passphrase)
	if err != nil {
		return inputError(stderr, "keygen", err)
	}
	defer clear(privPEM)
	if err := writeNewFile(*out, privPEM, 0o600, *force); err != nil {
		return inputError(stderr, "keygen", err)
	}
	if err := writeNewFile(pubPath, pubLine, 0o644, *force); err != nil {
		if !*force {
			os.Remove(*out) // made just now; do not leave half a pair
		}
		return inputError(stderr, "keygen", err)
	}
	fp, _ := asymjwt.Fingerprint(priv.Public())
	alg, _ := asymjwt.DefaultAlgorithm(priv.Public())
	encrypted := ""
	if passphrase != nil {
		encrypted = " (encrypted)"
	}
	fmt.Fprintf(stdout, "Wrote private key %s%s and public key %s.\n", *out, encrypted, pubPath)
	fmt.Fprintf(stdout, "Key %s, signs %s, comment %q.\n", fp, alg, comment)
	return exitOK
}

// keyGenerator checks -type and -bits and returns a function that makes
// such a key.
func keyGenerator(keyType string, bits int) (func() (crypto.Signer, error), error) {
	switch keyType {
	case "ed25519":
		if bits != 0 && bits != 256 {
			return nil, fmt.Errorf("-bits %d: ed25519 keys have a fixed size", bits)
		}
		return func() (crypto.Signer, error) {
			_, priv, err := ed25519.GenerateKey(rand.Reader)
			return priv, err
		}, nil
	case "ecdsa":
		var curve elliptic.Curve
		switch bits {
		case 0, 256:
			curve = elliptic.P256()
		case 384:
			curve = elliptic.P384()
		case 521:
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("-bits %d: ecdsa keys are 256, 384 or 521 bits", bits)
		}
		return func() (crypto.Signer, error) { return ecdsa.GenerateKey(curve, rand.Reader) }, nil
	case "rsa":
		if bits == 0 {
			bits = 3072
		}
		if bits < 2048 || bits > maxRSABits {
			return nil, fmt.Errorf("-bits %d: rsa keys are 2048 to %d bits", bits, maxRSABits)
		}
		return func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, bits) }, nil
	default:
		return nil, fmt.Errorf("-type %q: want ed25519, ecdsa or rsa", keyType)
	}
}

// keyComment is the comment on a new key: user@host as ssh-keygen writes
// it, or the file name when either is unknown.
func keyComment(path string) string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	if name == "" || host == "" {
		return filepath.Base(path)
	}
	return name + "@" + host
}

// marshalKeyPair encodes priv as an OpenSSH private key (encrypted when
// passphrase is not nil) and its public half as an authorized_keys line.
func marshalKeyPair(priv crypto.Signer, comment string, passphrase []byte) (privPEM, pubLine []byte, err error) {
	var block *pem.Block
	if passphrase != nil {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, comment, passphrase)
	} else {
		block, err = ssh.MarshalPrivateKey(priv, comment)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("encoding private key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("encoding public key: %w", err)
	}
	privPEM = pem.EncodeToMemory(block)
	clear(block.Bytes)
	pubLine = fmt.Appendf(nil, "%s %s\n", bytes.TrimSpace(ssh.MarshalAuthorizedKey(sshPub)), comment)
	return privPEM, pubLine, nil
}

// writeNewFile writes data to path with mode perm. Without force it fails
// if path exists (checked atomically, never following a symbolic link);
// with force it replaces path by renaming a new file over it, so the mode is
// perm whatever the old file's was.
func writeNewFile(path string, data []byte, perm os.FileMode, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists; use -f to overwrite it", path)
		}
		if err != nil {
			return err
		}
		if err := writeAndClose(f, data); err != nil {
			os.Remove(path)
			return err
		}
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := writeAndClose(f, data); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func writeAndClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	return nil
}
