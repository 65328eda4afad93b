package asymjwt

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// certHeaderParam is the JOSE header parameter that carries the signing
// key's OpenSSH certificate: its wire form in standard base64, as the second
// field of a -cert.pub file. See doc.go.
const certHeaderParam = "sshcert"

// CertificateInfo describes the OpenSSH certificate that vouched for the key
// of a verified token (see [Identity]).
type CertificateInfo struct {
	// KeyID is the certificate's key ID (ssh-keygen -I), which CAs use to
	// name the person or job it was issued to.
	KeyID string
	// Serial is the certificate's serial number (ssh-keygen -z); 0 when the
	// CA gave none.
	Serial uint64
	// CA is the SHA-256 fingerprint of the CA key that signed it.
	CA string
	// Principals are the names the certificate is valid for.
	Principals []string
	// ValidAfter is the start of its validity; the Unix epoch for "always".
	ValidAfter time.Time
	// ValidBefore is the end of its validity; zero for "forever".
	ValidBefore time.Time
}

// WithTrustedCAs trusts cas to certify the keys of every user, as sshd's
// TrustedUserCAKeys does: a token that carries an OpenSSH user certificate
// signed by one of them verifies for a user named among the certificate's
// principals (read a TrustedUserCAKeys file with [ParseCertAuthorities]).
// CAs trusted for one user only come from that user's cert-authority lines
// (a [KeyStore] that is a [CertAuthorityStore]). A CA must not have
// Principals here, since a certificate must then name the user; each key
// must be one this package verifies with.
func WithTrustedCAs(cas ...CertAuthority) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if len(cas) == 0 {
			return optionError("WithTrustedCAs", "no CAs")
		}
		for _, ca := range cas {
			if len(ca.Principals) > 0 {
				return optionError("WithTrustedCAs", "a CA trusted for every user cannot have Principals: a certificate must name the user")
			}
		}
		checked, err := checkCertAuthorities(cas)
		if err != nil {
			return optionError("WithTrustedCAs", err.Error())
		}
		v.cas = append(v.cas, checked...)
		return nil
	})
}

// authenticate finds the key that signed t and checks what its
// authorized_keys line or certificate allows. A token with a certificate
// whose "kid" names none of the user's stored keys is verified through the
// certificate; any other with the stored keys. Errors are not prefixed.
func (v *Verifier) authenticate(ctx context.Context, t *token, spec *algSpec, addr netip.Addr, now time.Time) (PublicKey, *CertificateInfo, error) {
	var start time.Time
	if v.metrics != nil {
		start = time.Now()
	}
	keys, err := v.lookupKeys(ctx, t.username)
	if v.metrics != nil {
		v.metrics.KeyStoreLookup(time.Since(start), err)
	}
	if err != nil {
		return PublicKey{}, nil, errorf("%w: key store: %w", ErrUnavailable, err)
	}
	if len(t.cert) > 0 && !kidNames(keys, t.kid) {
		return v.verifyCertificate(ctx, t, spec, keys, addr, now)
	}
	if len(keys) == 0 {
		return PublicKey{}, nil, fmt.Errorf("%w: %q", ErrUnknownUser, t.username)
	}
	key, err := verifySignature(&v.ed, t, spec, keys)
	if err != nil {
		return PublicKey{}, nil, fmt.Errorf("%w (user %q)", err, t.username)
	}
	// The same key may be on several lines with other options; one that
	// allows the request is enough, as in sshd.
	var firstErr error
	for _, k := range keys {
		if k.Fingerprint != key.Fingerprint {
			continue
		}
		err := k.Restrictions.check(now, addr)
		if err == nil {
			key = k
			firstErr = nil
			break
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return PublicKey{}, nil, fmt.Errorf("%w (user %q, key %s)", firstErr, t.username, key.Fingerprint)
	}
	if err := v.checkKeyRevoked(key.Fingerprint, key.Key); err != nil {
		return PublicKey{}, nil, fmt.Errorf("%w (user %q)", err, t.username)
	}
	// The Identity's copy: the store's may be shared (lookupKeys).
	key.Restrictions.From = slices.Clone(key.Restrictions.From)
	return key, nil, nil
}

// lookupKeys returns username's keys, to be read and not changed: from this
// package's stores, as they hold them, without a copy. Only the exact types
// qualify: a caller's type that embeds one of them and has its own
// PublicKeys (a filter, a policy) must be asked through that PublicKeys.
func (v *Verifier) lookupKeys(ctx context.Context, username string) ([]PublicKey, error) {
	switch s := v.keys.(type) {
	case *MemoryKeyStore:
		return s.sharedPublicKeys(ctx, username)
	case *DirKeyStore:
		return s.sharedPublicKeys(ctx, username)
	}
	return v.keys.PublicKeys(ctx, username)
}

// kidNames reports whether kid is the fingerprint of one of keys.
func kidNames(keys []PublicKey, kid []byte) bool {
	for i := range keys {
		if keys[i].Fingerprint == string(kid) {
			return true
		}
	}
	return false
}

// verifyCertificate verifies t through its certificate: a CA trusted for
// the user, the token signed by the certified key, then everything the
// certificate and the CA's line say. A certificate seen for the first time
// is also checked by x/crypto/ssh's CertChecker, which verifies the CA's
// signature; the result is cached, so later tokens cost one signature.
func (v *Verifier) verifyCertificate(ctx context.Context, t *token, spec *algSpec, keys []PublicKey, addr netip.Addr, now time.Time) (PublicKey, *CertificateInfo, error) {
	c, cached, err := v.certs.get(t.cert)
	if err != nil {
		return PublicKey{}, nil, err
	}
	var userCAs []CertAuthority
	if cs, ok := v.keys.(CertAuthorityStore); ok {
		if userCAs, err = cs.CertAuthorities(ctx, t.username); err != nil {
			return PublicKey{}, nil, errorf("%w: key store: %w", ErrUnavailable, err)
		}
	}
	if len(keys) == 0 && len(userCAs) == 0 && len(v.cas) == 0 {
		return PublicKey{}, nil, fmt.Errorf("%w: %q", ErrUnknownUser, t.username)
	}
	var entries []*CertAuthority
	for _, list := range [][]CertAuthority{userCAs, v.cas} {
		for i := range list {
			if list[i].Fingerprint == c.caFP {
				entries = append(entries, &list[i])
			}
		}
	}
	if len(entries) == 0 {
		return PublicKey{}, nil, fmt.Errorf("%w: CA %s is not trusted for user %q", ErrCertUntrusted, c.caFP, t.username)
	}
	if !spec.fits(c.pub) {
		return PublicKey{}, nil, wireKindError{fmt.Errorf("%w: %s does not fit the certified key (user %q)", ErrBadAlgorithm, spec.alg, t.username), "invalid_signature"}
	}
	// Until its CA's signature has been checked (after this, for a
	// certificate not seen before), a certificate and its key are anyone's
	// to make: such a key must not enter the cache of decoded keys.
	ed := &v.ed
	if !cached {
		ed = nil
	}
	if !spec.verify(ed, c.pub, t.signingInput, t.signature) {
		return PublicKey{}, nil, fmt.Errorf("%w: not signed by the certified key %s (user %q)", ErrBadSignature, c.fp, t.username)
	}

	// From here on the caller holds the certified key; the log may name
	// the certificate.
	refuse := func(err error) (PublicKey, *CertificateInfo, error) {
		return PublicKey{}, nil, certRefusal{fmt.Errorf("%w (user %q)", err, t.username), c.cert.KeyId, c.cert.Serial}
	}
	if c.cert.CertType != ssh.UserCert {
		return refuse(fmt.Errorf("%w: a host certificate", ErrCertType))
	}
	tokenSecs, err := c.checkValidity(t.time, now)
	if err != nil {
		return refuse(err)
	}
	if c.optionErr != nil {
		return refuse(c.optionErr)
	}
	if err := c.checkSourceAddress(addr); err != nil {
		return refuse(err)
	}
	var (
		principal string
		firstErr  error
	)
	for _, e := range entries {
		p, err := c.principalFor(e, t.username)
		if err == nil {
			err = e.Restrictions.check(now, addr)
		}
		if err == nil {
			principal, firstErr = p, nil
			break
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return refuse(firstErr)
	}
	if err := v.checkCertRevoked(c); err != nil {
		return refuse(err)
	}
	if !cached {
		if c.cert.Signature.Format == ssh.KeyAlgoRSA {
			return PublicKey{}, nil, fmt.Errorf("%w: CA signature uses SHA-1 (ssh-rsa), which OpenSSH no longer accepts (user %q)", ErrCertUntrusted, t.username)
		}
		checker := ssh.CertChecker{
			SupportedCriticalOptions: []string{"source-address"}, // checked above
			Clock:                    func() time.Time { return time.Unix(tokenSecs, 0) },
		}
		if err := checker.CheckCert(principal, c.cert); err != nil {
			return PublicKey{}, nil, fmt.Errorf("%w: %s (user %q)", ErrCertUntrusted, truncate(strings.TrimPrefix(err.Error(), "ssh: ")), t.username)
		}
		v.certs.put(t.cert, c)
	}
	info := c.info
	info.Principals = slices.Clone(info.Principals)
	return PublicKey{Key: c.pub, Fingerprint: c.fp, Comment: "certificate " + truncate(c.cert.KeyId)}, &info, nil
}

// certRefusal is a refusal of a token whose certificate comes from a
// trusted CA, with what the log says of it.
type certRefusal struct {
	error
	keyID  string
	serial uint64
}

func (e certRefusal) Unwrap() error { return e.error }

// certLogAttrs appends the attributes of a refused token's certificate, if
// its CA was trusted.
func certLogAttrs(err error, attrs []slog.Attr) []slog.Attr {
	var cr certRefusal
	if errors.As(err, &cr) {
		attrs = append(attrs, slog.String("cert_key_id", truncate(cr.keyID)), slog.Uint64("cert_serial", cr.serial))
	}
	return attrs
}

// parsedCert is a certificate read from a token's header, with what every
// check needs computed once. Once its CA signature has been verified it is
// cached and shared, and never changed.
type parsedCert struct {
	cert          *ssh.Certificate
	pub           crypto.PublicKey
	fp, caFP      string
	sourceAddress []netip.Prefix // nil: no source-address option
	optionErr     error          // a critical option that cannot be honoured
	info          CertificateInfo
}

// maxCertPrincipals bounds what a certificate from a token may list.
const maxCertPrincipals = 256

// parseCertParam decodes the header parameter: standard base64 (padded) of
// an OpenSSH certificate of a key tokens are signed with.
func parseCertParam(b64 []byte) (*parsedCert, error) {
	blob := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Strict().Decode(blob, b64)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not standard base64", ErrMalformed, certHeaderParam)
	}
	pub, err := ssh.ParsePublicKey(blob[:n])
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not an OpenSSH certificate", ErrMalformed, certHeaderParam)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("%w: %s holds a plain %s key, not a certificate", ErrMalformed, certHeaderParam, pub.Type())
	}
	if len(cert.ValidPrincipals) > maxCertPrincipals {
		return nil, fmt.Errorf("%w: certificate lists %d principals", ErrCertType, len(cert.ValidPrincipals))
	}
	typ := cert.Key.Type()
	cpk, ok := cert.Key.(ssh.CryptoPublicKey)
	if strings.HasPrefix(typ, "sk-") || !ok {
		return nil, fmt.Errorf("%w: certified key of type %s", ErrCertType, typ)
	}
	c := &parsedCert{cert: cert, pub: cpk.CryptoPublicKey()}
	if err := checkPublicKey(c.pub); err != nil {
		return nil, fmt.Errorf("%w: certified key: %w", ErrCertType, err)
	}
	c.fp = ssh.FingerprintSHA256(cert.Key)
	c.caFP = ssh.FingerprintSHA256(cert.SignatureKey)
	c.info = CertificateInfo{
		KeyID:      cert.KeyId,
		Serial:     cert.Serial,
		CA:         c.caFP,
		Principals: cert.ValidPrincipals,
		ValidAfter: time.Unix(certTime(cert.ValidAfter), 0).UTC(),
	}
	if cert.ValidBefore != ssh.CertTimeInfinity {
		c.info.ValidBefore = time.Unix(certTime(cert.ValidBefore), 0).UTC()
	}
	c.readCriticalOptions()
	return c, nil
}

// certTime converts a certificate time, clamping those past int64.
func certTime(t uint64) int64 {
	if t > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(t)
}

// readCriticalOptions understands source-address and refuses every other
// critical option, in name order so the reason does not vary.
func (c *parsedCert) readCriticalOptions() {
	names := make([]string, 0, len(c.cert.CriticalOptions))
	for name := range c.cert.CriticalOptions {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		value := c.cert.CriticalOptions[name]
		switch name {
		case "source-address":
			for _, s := range strings.Split(value, ",") {
				p, err := parseSourceAddress(s)
				if err != nil {
					c.optionErr = fmt.Errorf("%w: source-address %q is not a list of addresses", ErrCertOption, truncate(value))
					return
				}
				c.sourceAddress = append(c.sourceAddress, p)
			}
		case "force-command":
			c.optionErr = fmt.Errorf("%w: force-command (an HTTP request runs no command)", ErrCertOption)
			return
		case "verify-required":
			c.optionErr = fmt.Errorf("%w: verify-required (needs a security key's user verification)", ErrCertOption)
			return
		default:
			c.optionErr = fmt.Errorf("%w: unknown critical option %q", ErrCertOption, truncate(name))
			return
		}
	}
}

// parseSourceAddress reads one entry of source-address: an address or a
// CIDR prefix, as OpenSSH's addr_match_cidr_list takes them.
func parseSourceAddress(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkSourceAddress applies the source-address critical option.
func (c *parsedCert) checkSourceAddress(addr netip.Addr) error {
	if c.sourceAddress == nil {
		return nil
	}
	if !addr.IsValid() {
		return fmt.Errorf("%w: the certificate has source-address and the client address is unknown", ErrAddressRefused)
	}
	addr = addr.Unmap()
	for _, p := range c.sourceAddress {
		if p.Contains(addr) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not in the certificate's source-address %q", ErrAddressRefused, addr, truncate(c.cert.CriticalOptions["source-address"]))
}

// checkValidity requires both the token's time and the verifier's clock to
// lie in the certificate's validity, and returns the token's time in whole
// seconds.
func (c *parsedCert) checkValidity(tokenTime float64, now time.Time) (int64, error) {
	if !(tokenTime >= 0 && tokenTime < 1<<62) { // also NaN
		return 0, fmt.Errorf("%w: token time out of range", ErrCertExpired)
	}
	secs := int64(math.Floor(tokenTime))
	for _, at := range [...]struct {
		what string
		secs int64
	}{{"token time", secs}, {"now", now.Unix()}} {
		if at.secs < 0 || uint64(at.secs) < c.cert.ValidAfter {
			return 0, fmt.Errorf("%w: not valid before %s (%s is %s)", ErrCertExpired, c.info.ValidAfter.Format(time.RFC3339), at.what, time.Unix(at.secs, 0).UTC().Format(time.RFC3339))
		}
		if c.cert.ValidBefore != ssh.CertTimeInfinity && uint64(at.secs) >= c.cert.ValidBefore {
			return 0, fmt.Errorf("%w: expired at %s (%s is %s)", ErrCertExpired, c.info.ValidBefore.Format(time.RFC3339), at.what, time.Unix(at.secs, 0).UTC().Format(time.RFC3339))
		}
	}
	return secs, nil
}

// principalFor returns the principal by which the CA entry e lets the
// certificate in for username: the username itself, or for a
// cert-authority line with principals= a name of that list, as sshd
// decides. A certificate without principals is refused, as sshd refuses it.
func (c *parsedCert) principalFor(e *CertAuthority, username string) (string, error) {
	if len(c.cert.ValidPrincipals) == 0 {
		return "", fmt.Errorf("%w: the certificate lists no principals", ErrCertPrincipal)
	}
	if len(e.Principals) == 0 {
		if slices.Contains(c.cert.ValidPrincipals, username) {
			return username, nil
		}
		return "", fmt.Errorf("%w: principals %q", ErrCertPrincipal, truncate(strings.Join(c.cert.ValidPrincipals, ",")))
	}
	for _, p := range e.Principals {
		if slices.Contains(c.cert.ValidPrincipals, p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: none of the CA line's principals=%q is among %q", ErrCertPrincipal, truncate(strings.Join(e.Principals, ",")), truncate(strings.Join(c.cert.ValidPrincipals, ",")))
}

// maxCachedCerts bounds the cache of certificates whose CA signature
// verified.
const maxCachedCerts = 1024

// certCache remembers certificates whose CA signature verified, by their
// header text, so a client's later tokens cost one signature check. Only
// certificates from a CA trusted at the time get in, so a flood of made-up
// certificates cannot fill it; trust and every other check are decided
// afresh on each token.
type certCache struct {
	mu sync.RWMutex
	m  map[string]*parsedCert
}

// get returns the certificate in b64, and whether its CA signature is known
// to verify.
func (cc *certCache) get(b64 []byte) (*parsedCert, bool, error) {
	cc.mu.RLock()
	c := cc.m[string(b64)]
	cc.mu.RUnlock()
	if c != nil {
		return c, true, nil
	}
	c, err := parseCertParam(b64)
	return c, false, err
}

func (cc *certCache) put(b64 []byte, c *parsedCert) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.m == nil {
		cc.m = make(map[string]*parsedCert)
	}
	if len(cc.m) >= maxCachedCerts {
		for k := range cc.m { // any one: map order is random
			delete(cc.m, k)
			break
		}
	}
	cc.m[string(b64)] = c
}
