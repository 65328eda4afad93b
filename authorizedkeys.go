package asymjwt

import (
	"bytes"
	"crypto"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// KeyRestrictions are the authorized_keys options a [Verifier] enforces for
// a key, or for every certificate a CA signed: the line's "expiry-time" and
// "from=". The zero value restricts nothing.
type KeyRestrictions struct {
	// ExpiresAt is the line's expiry-time: the key no longer verifies once
	// the verifier's clock is past it. Zero means no expiry.
	ExpiresAt time.Time

	// From is the line's from= pattern list, one pattern an element: an IP
	// address ("192.0.2.7", "2001:db8::1"), a CIDR prefix ("10.0.0.0/8"),
	// or a wildcard pattern over the address's text ("192.168.1.*",
	// "2001:db8:*"); a leading "!" negates. The request's client address
	// (see [WithClientAddr]) must match a pattern and no negated one, as
	// sshd decides with UseDNS off. Nil means any address. Host names are
	// not looked up: a line naming one is skipped when parsed.
	From []string
}

// check reports why the restrictions refuse a request at now from addr
// (invalid when unknown), or nil.
func (r *KeyRestrictions) check(now time.Time, addr netip.Addr) error {
	if !r.ExpiresAt.IsZero() && now.After(r.ExpiresAt) {
		return fmt.Errorf("%w: expiry-time %s has passed", ErrKeyExpired, r.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if len(r.From) > 0 {
		if !addr.IsValid() {
			return fmt.Errorf("%w: the key has from= and the client address is unknown", ErrAddressRefused)
		}
		if !matchFrom(addr, r.From) {
			return fmt.Errorf("%w: %s does not match from=%q", ErrAddressRefused, addr, truncate(strings.Join(r.From, ",")))
		}
	}
	return nil
}

// equal reports whether r and o restrict alike.
func (r *KeyRestrictions) equal(o *KeyRestrictions) bool {
	return r.ExpiresAt.Equal(o.ExpiresAt) && slices.Equal(r.From, o.From)
}

// validate checks restrictions built by a program rather than parsed.
func (r *KeyRestrictions) validate() error {
	for _, p := range r.From {
		if err := checkFromPattern(p); err != nil {
			return err
		}
	}
	return nil
}

// CertAuthority is a CA whose OpenSSH user certificates a [Verifier]
// accepts: for every user ([WithTrustedCAs], the TrustedUserCAKeys of sshd)
// or for one user (a cert-authority line in that user's authorized_keys; see
// [ParseAuthorizedKeys] and [CertAuthorityStore]).
type CertAuthority struct {
	// Key is the CA's public key: *rsa.PublicKey (2048 bits or more),
	// *ecdsa.PublicKey (P-256, P-384, P-521) or ed25519.PublicKey.
	Key crypto.PublicKey
	// Fingerprint is the CA key's SHA-256 fingerprint (see [Fingerprint]),
	// which certificates are matched by; filled in when empty.
	Fingerprint string
	// Comment is the line's comment, for logs; it may be empty.
	Comment string
	// Principals is the principals= list of a user's cert-authority line.
	// When empty, the username must be among a certificate's principals;
	// when not, at least one of these names must be, whatever the username,
	// as sshd decides (the line is in that user's file already). A CA
	// trusted for every user cannot have it: there, a certificate must
	// always name the user.
	Principals []string
	// Restrictions are the line's expiry-time and from=; they apply to every
	// certificate the CA signed.
	Restrictions KeyRestrictions
}

// AuthorizedKeys is what an authorized_keys file grants a user: keys of the
// user's own, and CAs that may certify the user's keys.
type AuthorizedKeys struct {
	// Keys are the user's keys, from plain key lines and PEM blocks.
	Keys []PublicKey
	// Authorities are the CAs of the cert-authority lines.
	Authorities []CertAuthority
}

// ParseAuthorizedKeys parses text that mixes authorized_keys lines and PEM
// public keys, as [ParsePublicKeys] does, and also returns the CAs of its
// cert-authority lines (with their principals= option) apart from the keys:
// a CA's key never verifies a token as the user's own, it only vouches for
// certificates.
//
// The options sshd knows are honoured or refused, never dropped:
// "expiry-time" and "from=" become the entry's [KeyRestrictions],
// "cert-authority" and "principals=" make a CA entry; options that only
// shape an ssh session (no-pty, no-port-forwarding, no-agent-forwarding,
// no-X11-forwarding, no-user-rc, restrict, environment=, permitopen=,
// permitlisten=, tunnel= and their positive forms) mean nothing for an HTTP
// request and are ignored. A line with any other option ("command=", which
// HTTP cannot run; "verify-required"; an unknown one), a malformed option,
// a from= host name (the verifier does not look names up) or principals= on
// a plain key is skipped and reported as a [*LineError] wrapping
// [ErrKeyOption]. Entries that appear twice with the same options are
// returned once; the same key with other options is another entry, and a
// request may use whichever of them allows it, as sshd does.
func ParseAuthorizedKeys(data []byte) (AuthorizedKeys, []error) {
	return parseKeyText(data, authorizedKeysText)
}

// ParseCertAuthorities parses a file of CA public keys trusted for every
// user, in the format of sshd's TrustedUserCAKeys: one authorized_keys line
// a line (the "cert-authority" option may be present or not), '#' comments
// and blank lines. expiry-time and from= are honoured as on a cert-authority
// line; principals= is refused there (see [CertAuthority.Principals]). Lines
// that do not yield a CA are skipped and reported as [*LineError] values.
func ParseCertAuthorities(data []byte) ([]CertAuthority, []error) {
	ak, errs := parseKeyText(data, caText)
	return ak.Authorities, errs
}

// keyTextKind is what a text of public keys is read as.
type keyTextKind int

const (
	keysText           keyTextKind = iota // ParsePublicKeys: keys only
	authorizedKeysText                    // keys and cert-authority lines
	caText                                // every line a CA
)

// parseKeyText reads lines of authorized_keys and PEM public keys.
func parseKeyText(data []byte, kind keyTextKind) (AuthorizedKeys, []error) {
	var (
		ak   AuthorizedKeys
		errs []error
	)
	addKey := func(line int, k PublicKey) {
		if err := checkPublicKey(k.Key); err != nil {
			errs = append(errs, &LineError{Line: line, Err: err})
			return
		}
		fp, err := fingerprint(k.Key)
		if err != nil {
			errs = append(errs, &LineError{Line: line, Err: err})
			return
		}
		k.Fingerprint = fp
		if kind == caText {
			addCA(&ak, CertAuthority{Key: k.Key, Fingerprint: fp, Comment: k.Comment, Restrictions: k.Restrictions})
			return
		}
		if !slices.ContainsFunc(ak.Keys, func(o PublicKey) bool {
			return o.Fingerprint == fp && o.Restrictions.equal(&k.Restrictions)
		}) {
			ak.Keys = append(ak.Keys, k)
		}
	}

	lines := bytes.Split(data, []byte("\n"))
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := bytes.TrimSpace(lines[i]) // also drops the \r of CRLF
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if bytes.HasPrefix(line, []byte("-----BEGIN ")) {
			end := pemEnd(lines, i)
			if end < 0 {
				errs = append(errs, &LineError{Line: lineNo, Err: fmt.Errorf("%w: PEM block has no END line", ErrKeyFormat)})
				continue
			}
			var block []byte
			for _, l := range lines[i : end+1] {
				block = append(append(block, bytes.TrimSpace(l)...), '\n')
			}
			pub, err := parsePEMPublicKey(block)
			if err != nil {
				errs = append(errs, &LineError{Line: lineNo, Err: err})
			} else {
				addKey(lineNo, PublicKey{Key: pub})
			}
			i = end
			continue
		}
		pub, comment, opts, err := parseAuthorizedKeyLine(line)
		if err != nil {
			errs = append(errs, &LineError{Line: lineNo, Err: err})
			continue
		}
		switch {
		case kind == caText && len(opts.principals) > 0:
			errs = append(errs, &LineError{Line: lineNo, Err: fmt.Errorf("%w: principals= on a CA trusted for every user: a certificate must name the user", ErrKeyOption)})
		case kind == caText || !opts.certAuthority:
			addKey(lineNo, PublicKey{Key: pub, Comment: comment, Restrictions: opts.restrictions})
		case kind == keysText:
			errs = append(errs, &LineError{Line: lineNo, Err: fmt.Errorf("%w: cert-authority line %q: a CA key is not a key of the user (ParseAuthorizedKeys reads it as a CA)", ErrUnsupportedKey, truncate(comment))})
		default:
			if err := checkPublicKey(pub); err != nil {
				errs = append(errs, &LineError{Line: lineNo, Err: err})
				continue
			}
			fp, err := fingerprint(pub)
			if err != nil {
				errs = append(errs, &LineError{Line: lineNo, Err: err})
				continue
			}
			addCA(&ak, CertAuthority{Key: pub, Fingerprint: fp, Comment: comment, Principals: opts.principals, Restrictions: opts.restrictions})
		}
	}
	return ak, errs
}

// addCA appends ca unless an entry with the same key and options is there.
func addCA(ak *AuthorizedKeys, ca CertAuthority) {
	if !slices.ContainsFunc(ak.Authorities, func(o CertAuthority) bool {
		return o.Fingerprint == ca.Fingerprint && slices.Equal(o.Principals, ca.Principals) && o.Restrictions.equal(&ca.Restrictions)
	}) {
		ak.Authorities = append(ak.Authorities, ca)
	}
}

// parseAuthorizedKeyLine parses one non-blank, non-comment authorized_keys
// line into the key, its comment and its options.
func parseAuthorizedKeyLine(line []byte) (crypto.PublicKey, string, lineOptions, error) {
	out, comment, options, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		// The x/crypto/ssh error may quote the line; say nothing of it.
		return nil, "", lineOptions{}, fmt.Errorf("%w: corrupt or unrecognised authorized_keys line", ErrKeyFormat)
	}
	typ := out.Type()
	if _, ok := out.(*ssh.Certificate); ok {
		return nil, "", lineOptions{}, fmt.Errorf("%w: certificate %s %q not accepted", ErrUnsupportedKey, typ, truncate(comment))
	}
	if strings.HasPrefix(typ, "sk-") {
		return nil, "", lineOptions{}, fmt.Errorf("%w: security key %s %q not accepted", ErrUnsupportedKey, typ, truncate(comment))
	}
	cpk, ok := out.(ssh.CryptoPublicKey)
	if !ok {
		return nil, "", lineOptions{}, fmt.Errorf("%w: key type %s %q", ErrUnsupportedKey, typ, truncate(comment))
	}
	opts, err := parseKeyOptions(options)
	if err != nil {
		return nil, "", lineOptions{}, fmt.Errorf("%w (key %s %q)", err, typ, truncate(comment))
	}
	return cpk.CryptoPublicKey(), comment, opts, nil
}

// lineOptions are the options of one authorized_keys line that matter here.
type lineOptions struct {
	certAuthority bool
	principals    []string
	restrictions  KeyRestrictions
}

// parseKeyOptions interprets the options of an authorized_keys line, as
// x/crypto/ssh split them (each still quoted). Option names are matched
// without case, as sshd does. See ParseAuthorizedKeys for the policy.
func parseKeyOptions(options []string) (lineOptions, error) {
	var (
		o                      lineOptions
		hasFrom, hasPrincipals bool
	)
	for _, raw := range options {
		name, value, hasValue, err := splitKeyOption(raw)
		if err != nil {
			return o, err
		}
		lname := strings.ToLower(name)
		wantValue := false
		switch lname {
		case "cert-authority":
			o.certAuthority = true
		case "agent-forwarding", "no-agent-forwarding", "port-forwarding", "no-port-forwarding",
			"pty", "no-pty", "user-rc", "no-user-rc", "x11-forwarding", "no-x11-forwarding",
			"restrict", "no-touch-required":
			// They shape an ssh session, which an HTTP request is not.
		case "environment", "permitopen", "permitlisten", "tunnel":
			wantValue = true
		case "expiry-time":
			wantValue = true
			t, err := parseExpiryTime(value)
			if hasValue && err != nil {
				return o, err
			}
			// Given twice, the earlier time counts, as in sshd.
			if hasValue && (o.restrictions.ExpiresAt.IsZero() || t.Before(o.restrictions.ExpiresAt)) {
				o.restrictions.ExpiresAt = t
			}
		case "from":
			wantValue = true
			if hasFrom {
				return o, fmt.Errorf("%w: from= given twice", ErrKeyOption)
			}
			hasFrom = true
			if hasValue {
				for _, p := range strings.Split(value, ",") {
					if err := checkFromPattern(p); err != nil {
						return o, err
					}
					o.restrictions.From = append(o.restrictions.From, p)
				}
			}
		case "principals":
			wantValue = true
			if hasPrincipals {
				return o, fmt.Errorf("%w: principals= given twice", ErrKeyOption)
			}
			hasPrincipals = true
			if hasValue {
				for _, p := range strings.Split(value, ",") {
					if p == "" {
						return o, fmt.Errorf("%w: principals= has an empty name", ErrKeyOption)
					}
					o.principals = append(o.principals, p)
				}
			}
		case "command":
			// The value may hold a secret; it is not quoted.
			return o, fmt.Errorf("%w: command= (a forced command; an HTTP request runs none)", ErrKeyOption)
		case "verify-required":
			return o, fmt.Errorf("%w: verify-required (needs a security key's user verification)", ErrKeyOption)
		default:
			return o, fmt.Errorf("%w: unknown option %q", ErrKeyOption, truncate(name))
		}
		if hasValue != wantValue {
			if wantValue {
				return o, fmt.Errorf("%w: %s needs a quoted value", ErrKeyOption, lname)
			}
			return o, fmt.Errorf("%w: %s takes no value", ErrKeyOption, lname)
		}
	}
	if hasPrincipals && !o.certAuthority {
		return o, fmt.Errorf("%w: principals= applies only to a cert-authority line", ErrKeyOption)
	}
	return o, nil
}

// splitKeyOption splits `name` or `name="value"` and undoes the \" escape,
// as sshd's opt_dequote does.
func splitKeyOption(raw string) (name, value string, hasValue bool, err error) {
	name, quoted, hasValue := strings.Cut(raw, "=")
	if name == "" {
		return "", "", false, fmt.Errorf("%w: option without a name", ErrKeyOption)
	}
	if !hasValue {
		return name, "", false, nil
	}
	if len(quoted) < 2 || quoted[0] != '"' || quoted[len(quoted)-1] != '"' {
		return "", "", false, fmt.Errorf("%w: %s= value not in double quotes", ErrKeyOption, truncate(strings.ToLower(name)))
	}
	inner := quoted[1 : len(quoted)-1]
	var b strings.Builder
	for i := 0; i < len(inner); i++ {
		switch {
		case inner[i] == '\\' && i+1 < len(inner) && inner[i+1] == '"':
			b.WriteByte('"')
			i++
		case inner[i] == '"':
			return "", "", false, fmt.Errorf("%w: %s= value has a stray quote", ErrKeyOption, truncate(strings.ToLower(name)))
		default:
			b.WriteByte(inner[i])
		}
	}
	return name, b.String(), true, nil
}

// parseExpiryTime reads sshd's expiry-time: YYYYMMDD, YYYYMMDDHHMM or
// YYYYMMDDHHMMSS, in UTC with a trailing "Z", else in the local time zone.
func parseExpiryTime(s string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") {
		loc, s = time.UTC, s[:len(s)-1]
	}
	var layout string
	switch len(s) {
	case 8:
		layout = "20060102"
	case 12:
		layout = "200601021504"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, fmt.Errorf("%w: expiry-time %q is not YYYYMMDD[HHMM[SS]][Z]", ErrKeyOption, truncate(s))
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return time.Time{}, fmt.Errorf("%w: expiry-time %q is not YYYYMMDD[HHMM[SS]][Z]", ErrKeyOption, truncate(s))
		}
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: expiry-time %q is not a valid time", ErrKeyOption, truncate(s))
	}
	return t, nil
}

// checkFromPattern accepts the from= patterns that can be decided from an
// address alone: an address, a CIDR prefix, or a wildcard pattern over an
// address's text, each optionally negated with "!".
func checkFromPattern(p string) error {
	body := strings.TrimPrefix(p, "!")
	switch {
	case body == "":
		return fmt.Errorf("%w: from= has an empty pattern", ErrKeyOption)
	case strings.Contains(body, "/"):
		if _, err := netip.ParsePrefix(body); err != nil {
			return fmt.Errorf("%w: from= pattern %q is not a CIDR prefix", ErrKeyOption, truncate(p))
		}
		return nil
	}
	if _, err := netip.ParseAddr(body); err == nil {
		return nil
	}
	for _, c := range body {
		if !strings.ContainsRune("0123456789abcdefABCDEF.:*?", c) {
			return fmt.Errorf("%w: from= pattern %q names a host, and host names are not looked up (use addresses)", ErrKeyOption, truncate(p))
		}
	}
	return nil
}

// matchFrom decides a from= pattern list for addr as sshd's
// match_host_and_ip does without DNS: a negated match refuses, otherwise
// one positive match allows. A pattern that does not parse matches nothing
// (a negated one then refuses, failing closed).
func matchFrom(addr netip.Addr, patterns []string) bool {
	addr = addr.Unmap()
	text := strings.ToLower(addr.String())
	allowed := false
	for _, p := range patterns {
		body, negated := strings.CutPrefix(p, "!")
		var match bool
		if checkFromPattern(body) != nil {
			if negated {
				return false
			}
			continue
		}
		if strings.Contains(body, "/") {
			prefix, _ := netip.ParsePrefix(body)
			match = prefix.Masked().Contains(addr)
		} else if a, err := netip.ParseAddr(body); err == nil {
			match = a.Unmap() == addr
		} else {
			match = matchWildcard(strings.ToLower(body), text)
		}
		if match && negated {
			return false
		}
		allowed = allowed || match
	}
	return allowed
}

// matchWildcard matches s against a pattern where '*' stands for any run of
// characters and '?' for one, in time linear in len(pattern)*len(s).
func matchWildcard(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
