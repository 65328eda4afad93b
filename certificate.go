package asymjwt

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/crypto/ssh"
)

// CertifiedKey is a [Key] that may carry the OpenSSH user certificate of its
// public key (made by ssh-keygen -s, or by a CA such as Vault's SSH engine,
// step-ca or Teleport). A [Signer] puts the certificate in the header of
// every token it signs with the key, so a [Verifier] that trusts the CA
// ([WithTrustedCAs], or a cert-authority line of the user) accepts the key
// without storing it. Keys from [KeyFromFile] pick up the certificate
// beside the key file; keys from [Agent.Key] the one the agent holds with
// the key; [KeyWithCertificate] attaches one to any key.
type CertifiedKey interface {
	Key
	// Certificate returns the key's user certificate, or nil when it has
	// none. The caller must not modify it.
	Certificate() *ssh.Certificate
}

// KeyWithCertificate returns key carrying the OpenSSH user certificate cert,
// given as a -cert.pub file holds it (one line: type, base64, comment), for
// example from a CA's API. The certificate must certify key's public key
// ([ErrCertificateMismatch] otherwise) and be a user certificate. Its
// validity is the verifier's to judge, not checked here. Errors are
// [*KeyError] values; key is not changed.
func KeyWithCertificate(key Key, cert []byte) (Key, error) {
	if key == nil {
		return nil, &KeyError{Err: fmt.Errorf("%w: nil key", ErrUnsupportedKey)}
	}
	c, err := parseCertificateText(cert)
	if err != nil {
		return nil, &KeyError{Err: err}
	}
	k, err := withCertificate(key, c)
	if err != nil {
		return nil, &KeyError{Err: err}
	}
	return k, nil
}

// withCertificate returns a copy of key that carries cert, after checking
// that cert fits it.
func withCertificate(key Key, cert *ssh.Certificate) (Key, error) {
	if err := checkCertificateFor(key.Public(), cert); err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *signerKey:
		c := *k
		c.cert = cert
		return &c, nil
	case *agentKey:
		c := *k
		c.cert = cert
		return &c, nil
	case *certifiedKey:
		return &certifiedKey{Key: k.Key, cert: cert}, nil
	}
	return &certifiedKey{Key: key, cert: cert}, nil
}

// certifiedKey is a caller's Key with a certificate attached.
type certifiedKey struct {
	Key
	cert *ssh.Certificate
}

func (k *certifiedKey) Certificate() *ssh.Certificate { return k.cert }

// Certificate returns the certificate attached to the key, or nil.
func (k *signerKey) Certificate() *ssh.Certificate { return k.cert }

// Certificate returns the certificate the agent holds for the key, or nil.
func (k *agentKey) Certificate() *ssh.Certificate { return k.cert }

var (
	_ CertifiedKey = (*signerKey)(nil)
	_ CertifiedKey = (*agentKey)(nil)
	_ CertifiedKey = (*certifiedKey)(nil)
)

// parseCertificateText reads one OpenSSH certificate line, as a -cert.pub
// file holds it. Its errors are not prefixed and hold no certificate bytes.
func parseCertificateText(data []byte) (*ssh.Certificate, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: empty certificate", ErrKeyFormat)
	}
	pub, _, options, rest, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: not an OpenSSH certificate line", ErrKeyFormat)
	}
	if len(options) > 0 {
		return nil, fmt.Errorf("%w: options before a certificate", ErrKeyFormat)
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey(rest); err == nil {
		return nil, fmt.Errorf("%w: more than one key or certificate", ErrKeyFormat)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("%w: a plain %s public key, not a certificate", ErrKeyFormat, pub.Type())
	}
	return cert, nil
}

// checkCertificateFor checks that cert is a user certificate of pub. Its
// errors are not prefixed.
func checkCertificateFor(pub crypto.PublicKey, cert *ssh.Certificate) error {
	if cert == nil || cert.Key == nil {
		return fmt.Errorf("%w: no certificate", ErrKeyFormat)
	}
	if cert.CertType != ssh.UserCert {
		return fmt.Errorf("%w: a host certificate (tokens need a user certificate)", ErrUnsupportedKey)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
	if !bytes.Equal(sshPub.Marshal(), cert.Key.Marshal()) {
		return fmt.Errorf("%w: it certifies %s, the key is %s", ErrCertificateMismatch, ssh.FingerprintSHA256(cert.Key), ssh.FingerprintSHA256(sshPub))
	}
	return nil
}

// certFileSuffix names the certificate beside a key file, as ssh -i looks
// for it: id_ed25519 and id_ed25519-cert.pub.
const certFileSuffix = "-cert.pub"

// WithCertificateFile reads the OpenSSH user certificate of the key from
// path (a "~/" prefix stands for the home directory) instead of the file
// beside it, for [KeyFromFile] and [ParseKey]. A missing or unusable file is
// an error. path must not be empty.
func WithCertificateFile(path string) KeyOption {
	return keyOptionFunc(func(o *keyOptions) error {
		if path == "" {
			return optionError("WithCertificateFile", "empty path")
		}
		o.certFile = path
		return nil
	})
}

// NoCertificateOption leaves certificates out; [WithoutCertificate] makes
// one. It is a [KeyOption] and a [SignerOption].
type NoCertificateOption struct{}

// WithoutCertificate leaves OpenSSH certificates out: [KeyFromFile] does not
// look for the certificate beside the key file, and a [Signer] sends no
// certificate in its tokens even when its key carries one (to keep tokens
// small, or not to show a certificate's principals and key ID to a server
// that does not need them).
func WithoutCertificate() NoCertificateOption { return NoCertificateOption{} }

func (NoCertificateOption) applyKey(o *keyOptions) error {
	o.noCert = true
	return nil
}

func (NoCertificateOption) applySigner(c *signerConfig) error {
	c.noCert = true
	return nil
}

// attachCertificateFile loads the certificate for a key read from keyPath
// (empty for a key given as bytes), as the options ask: the named file, or
// the one beside the key file when it exists. It returns key unchanged when
// there is none.
func attachCertificateFile(key Key, keyPath string, o keyOptions) (Key, error) {
	if o.noCert && o.certFile != "" {
		return nil, optionError("WithCertificateFile", "given with WithoutCertificate")
	}
	path, named := o.certFile, o.certFile != ""
	if !named {
		if o.noCert || keyPath == "" {
			return key, nil
		}
		path = keyPath + certFileSuffix
	}
	// The error names the file that failed, and says it is the certificate.
	fail := func(err error) (Key, error) {
		return nil, &KeyError{Path: path, Err: fmt.Errorf("as the key's certificate: %w", err)}
	}
	expanded, err := expandHome(path)
	if err != nil {
		return fail(err)
	}
	data, err := readCertificateFile(expanded)
	if !named && errors.Is(err, fs.ErrNotExist) {
		return key, nil
	}
	if err != nil {
		return fail(err)
	}
	cert, err := parseCertificateText(data)
	if err != nil {
		return fail(err)
	}
	k, err := withCertificate(key, cert)
	if err != nil {
		return fail(err)
	}
	return k, nil
}

// readCertificateFile reads a regular file of at most maxKeyFileSize bytes.
func readCertificateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, ErrNotKeyFile
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: certificate file larger than %d bytes", ErrKeyFormat, maxKeyFileSize)
	}
	return data, nil
}
