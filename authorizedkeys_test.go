package asymjwt

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseKeyOptions(t *testing.T) {
	ed := ksFixture(t, "openssh_ed25519.pub.ssh")
	tests := []struct {
		name    string
		options string // before the key
		want    error  // nil: the line loads
		ca      bool
		expires time.Time
		from    []string
		princ   []string
	}{
		{"session options are ignored", `no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc,restrict,pty,port-forwarding,agent-forwarding,x11-forwarding,user-rc,no-touch-required`, nil, false, time.Time{}, nil, nil},
		{"valued session options are ignored", `environment="A=b c",permitopen="host:80",permitlisten="8080",tunnel="1"`, nil, false, time.Time{}, nil, nil},
		{"names without case", `No-Pty,RESTRICT,From="10.0.0.1"`, nil, false, time.Time{}, []string{"10.0.0.1"}, nil},
		{"expiry-time UTC date", `expiry-time="20270102Z"`, nil, false, time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC), nil, nil},
		{"expiry-time UTC minutes", `expiry-time="202701021530Z"`, nil, false, time.Date(2027, 1, 2, 15, 30, 0, 0, time.UTC), nil, nil},
		{"expiry-time UTC seconds", `expiry-time="20270102153045z"`, nil, false, time.Date(2027, 1, 2, 15, 30, 45, 0, time.UTC), nil, nil},
		{"expiry-time local", `expiry-time="20270102"`, nil, false, time.Date(2027, 1, 2, 0, 0, 0, 0, time.Local), nil, nil},
		{"expiry-time twice: the earlier", `expiry-time="20280101Z",expiry-time="20270101Z"`, nil, false, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), nil, nil},
		{"from list", `from="10.0.0.0/8,192.168.1.*,!192.168.1.13,2001:db8::/32,fe80::1"`, nil, false, time.Time{}, []string{"10.0.0.0/8", "192.168.1.*", "!192.168.1.13", "2001:db8::/32", "fe80::1"}, nil},
		{"cert-authority with principals", `cert-authority,principals="ops,deploy"`, nil, true, time.Time{}, nil, []string{"ops", "deploy"}},
		{"escaped quote", `environment="A=\"b\""`, nil, false, time.Time{}, nil, nil},

		{"command=", `command="/usr/bin/backup --secret=hunter2"`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"command= with restrict", `restrict,command="x"`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"verify-required", `verify-required`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"unknown option", `no-such-option`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"unknown valued option", `frobnicate="yes"`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"from= host name", `from="*.example.com"`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"from= negated host name", `from="10.0.0.0/8,!evil.example.com"`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"from= bad CIDR", `from="10.0.0.0/99"`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"from= empty pattern", `from="10.0.0.1,"`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"from= twice", `from="10.0.0.1",from="10.0.0.2"`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"from without value", `from`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"unquoted value", `from=10.0.0.1`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"flag with a value", `no-pty="yes"`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"expiry-time malformed", `expiry-time="tomorrow"`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"expiry-time impossible date", `expiry-time="20271399Z"`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"expiry-time wrong length", `expiry-time="2027010"`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"principals on a plain key", `principals="ops"`, ErrKeyOption, false, time.Time{}, nil, nil},
		{"principals empty name", `cert-authority,principals="ops,,x"`, ErrKeyOption, true, time.Time{}, nil, nil},
		{"principals twice", `cert-authority,principals="a",principals="b"`, ErrKeyOption, true, time.Time{}, nil, nil},
		{"cert-authority with a value", `cert-authority="yes"`, ErrKeyOption, true, time.Time{}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.options + " " + ed + "\n"
			ak, errs := ParseAuthorizedKeys([]byte(text))
			if tt.want != nil {
				if len(ak.Keys)+len(ak.Authorities) != 0 || len(errs) != 1 || !errors.Is(errs[0], tt.want) {
					t.Fatalf("keys %v CAs %v errors %v; want the line skipped with %v", ak.Keys, ak.Authorities, errs, tt.want)
				}
				ksCheckErrors(t, text, errs, []ksWantErr{{1, tt.want}})
				if strings.Contains(errs[0].Error(), "hunter2") {
					t.Errorf("error quotes the command: %v", errs[0])
				}
				return
			}
			if len(errs) != 0 {
				t.Fatalf("errors %v", errs)
			}
			var r KeyRestrictions
			if tt.ca {
				if len(ak.Authorities) != 1 || len(ak.Keys) != 0 {
					t.Fatalf("keys %v CAs %v, want one CA", ak.Keys, ak.Authorities)
				}
				r = ak.Authorities[0].Restrictions
				if !slices.Equal(ak.Authorities[0].Principals, tt.princ) {
					t.Errorf("Principals = %q, want %q", ak.Authorities[0].Principals, tt.princ)
				}
			} else {
				if len(ak.Keys) != 1 || len(ak.Authorities) != 0 {
					t.Fatalf("keys %v CAs %v, want one key", ak.Keys, ak.Authorities)
				}
				r = ak.Keys[0].Restrictions
			}
			if !r.ExpiresAt.Equal(tt.expires) || !slices.Equal(r.From, tt.from) {
				t.Errorf("Restrictions = %+v, want expiry %v from %q", r, tt.expires, tt.from)
			}
		})
	}
}

func TestParseAuthorizedKeysSameKeyTwice(t *testing.T) {
	ed := ksFixture(t, "openssh_ed25519.pub.ssh")
	text := ed + "\n" + `from="10.0.0.0/8" ` + ed + "\n" + ed + " again\n" + `cert-authority ` + ed + "\n" + `cert-authority ` + ed + "\n" + `cert-authority,principals="x" ` + ed + "\n"
	ak, errs := ParseAuthorizedKeys([]byte(text))
	if len(errs) != 0 || len(ak.Keys) != 2 || len(ak.Authorities) != 2 {
		t.Fatalf("keys %v CAs %v errors %v; want 2 keys (other options) and 2 CAs", ak.Keys, ak.Authorities, errs)
	}
	// ParsePublicKeys reports the CA lines, so a caller that reads only keys
	// never takes a CA for a key of the user.
	keys, errs := ParsePublicKeys([]byte(text))
	if len(keys) != 2 {
		t.Fatalf("ParsePublicKeys keys %v", keys)
	}
	ksCheckErrors(t, text, errs, []ksWantErr{{4, ErrUnsupportedKey}, {5, ErrUnsupportedKey}, {6, ErrUnsupportedKey}})
}

func TestParseCertAuthorities(t *testing.T) {
	ed := ksFixture(t, "openssh_ed25519.pub.ssh")
	p256 := ksFixture(t, "openssh_p256.pub.ssh")
	text := "# TrustedUserCAKeys\n" + ed + "\n\ncert-authority " + p256 + "\n" + `principals="ops" ` + ed + "\n" + `from="10.0.0.0/8",expiry-time="20300101Z" ` + p256 + "\ngarbage\n"
	cas, errs := ParseCertAuthorities([]byte(text))
	if len(cas) != 3 {
		t.Fatalf("CAs %v", cas)
	}
	if cas[0].Fingerprint != ksFingerprint(t, "openssh_ed25519.pub.ssh") || cas[0].Comment != "openssh-ed25519" {
		t.Errorf("CA 0 = %+v", cas[0])
	}
	if len(cas[2].Restrictions.From) != 1 || cas[2].Restrictions.ExpiresAt.IsZero() {
		t.Errorf("CA 2 restrictions = %+v", cas[2].Restrictions)
	}
	ksCheckErrors(t, text, errs, []ksWantErr{{5, ErrKeyOption}, {7, ErrKeyFormat}})
}

func TestMatchFrom(t *testing.T) {
	tests := []struct {
		patterns string
		addr     string
		want     bool
	}{
		{"10.0.0.0/8", "10.1.2.3", true},
		{"10.0.0.0/8", "11.1.2.3", false},
		{"10.0.0.1/8", "10.200.0.1", true}, // host bits ignored
		{"192.0.2.7", "192.0.2.7", true},
		{"192.0.2.7", "192.0.2.70", false},
		{"192.0.2.*", "192.0.2.70", true},
		{"192.0.2.?", "192.0.2.7", true},
		{"192.0.2.?", "192.0.2.70", false},
		{"*", "198.51.100.1", true},
		{"*,!198.51.100.1", "198.51.100.1", false},
		{"!198.51.100.1,*", "198.51.100.2", true},
		{"!198.51.100.0/24", "198.51.100.2", false},
		{"!198.51.100.0/24", "10.0.0.1", false}, // negations alone allow nothing
		{"2001:db8::/32", "2001:db8:1::5", true},
		{"2001:DB8:*", "2001:db8:1::5", true},
		{"2001:db8::1", "2001:db8:0:0::1", true},
		{"10.0.0.0/8", "::ffff:10.0.0.1", true},
		{"::ffff:10.0.0.1", "10.0.0.1", true},
		{"10.0.0.0/8", "2001:db8::1", false},
		{"*.example.com", "10.0.0.1", false},       // not accepted when parsed; matches nothing
		{"*,!host.example.com", "10.0.0.1", false}, // a negation that cannot be decided refuses
	}
	for _, tt := range tests {
		got := matchFrom(netip.MustParseAddr(tt.addr), strings.Split(tt.patterns, ","))
		if got != tt.want {
			t.Errorf("from=%q, %s: %v, want %v", tt.patterns, tt.addr, got, tt.want)
		}
	}
}

func TestMatchWildcard(t *testing.T) {
	for _, tt := range []struct {
		p, s string
		want bool
	}{
		{"", "", true}, {"*", "", true}, {"*", "abc", true}, {"a*c", "abbbc", true}, {"a*c", "abcd", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"**a", "a", true}, {"*a*b*", "xxaxxbxx", true},
		{"*a*b", "xxaxxbxxc", false}, {strings.Repeat("*a", 30) + "b", strings.Repeat("a", 200), false},
	} {
		if got := matchWildcard(tt.p, tt.s); got != tt.want {
			t.Errorf("matchWildcard(%q, %q) = %v", tt.p, tt.s, got)
		}
	}
}

// TestSecurityAuthorizedKeysOptions is SECURITY.md row S2: a key whose
// expiry-time has passed, used from an address its from= does not allow, or
// on a line with an option that cannot be honoured, is not used, with the
// reason reported.
func TestSecurityAuthorizedKeysOptions(t *testing.T) {
	k := loadTestKeys(t)
	ed := ksFixture(t, "openssh_ed25519.pub.ssh")  // k.ed's public key
	other := ksFixture(t, "pkcs8_ed25519.pub.pem") // another key of the user
	tests := []struct {
		name string
		file string
		from string // client address
		want error
	}{
		{"expiry-time ahead", `expiry-time="20261122120100Z" ` + ed, "192.0.2.1:1", nil},
		{"expiry-time at the second", `expiry-time="20261122120000Z" ` + ed, "192.0.2.1:1", nil},
		{"expiry-time past", `expiry-time="20261122115959Z" ` + ed, "192.0.2.1:1", ErrKeyExpired},
		{"expiry-time past by a year", `expiry-time="20251122Z" ` + ed + "\n" + other, "192.0.2.1:1", ErrKeyExpired},
		{"from= matches CIDR", `from="192.0.2.0/24" ` + ed, "192.0.2.1:1", nil},
		{"from= matches wildcard", `from="10.*,192.0.2.?" ` + ed, "192.0.2.1:1", nil},
		{"from= matches IPv6", `from="2001:db8::/32" ` + ed, "[2001:db8::1]:443", nil},
		{"from= does not match", `from="10.0.0.0/8" ` + ed, "192.0.2.1:1", ErrAddressRefused},
		{"from= negated", `from="192.0.2.0/24,!192.0.2.1" ` + ed, "192.0.2.1:1", ErrAddressRefused},
		{"from= with no address known", `from="192.0.2.0/24" ` + ed, "pipe", ErrAddressRefused},
		{"same key, second line allows", `from="10.0.0.0/8" ` + ed + "\n" + `expiry-time="20301122Z" ` + ed, "192.0.2.1:1", nil},
		{"same key, both lines refuse: the first reason", `from="10.0.0.0/8" ` + ed + "\n" + `expiry-time="20201122Z" ` + ed, "192.0.2.1:1", ErrAddressRefused},
		{"command= line not used", `command="uptime" ` + ed + "\n" + other, "192.0.2.1:1", ErrBadSignature},
		{"unknown option line not used", `frobnicate ` + ed + "\n" + other, "192.0.2.1:1", ErrBadSignature},
		{"only line not used: unknown user", `command="uptime" ` + ed, "192.0.2.1:1", ErrUnknownUser},
		{"session options do not stop the key", `restrict,no-pty,permitopen="x:1" ` + ed, "192.0.2.1:1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "alice.pub"), []byte(tt.file+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			store, err := NewDirKeyStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t)
			v, err := NewVerifier(store, WithClock(func() time.Time { return h.now }))
			if err != nil {
				t.Fatal(err)
			}
			h.v = v
			_, err = h.verifyFrom(tt.from, "JWT "+h.token("alice", k.ed, h.now, nil))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if strings.Count(err.Error(), "asymjwt: ") != 1 {
				t.Errorf("error %q does not name the package exactly once", err)
			}
			if tt.want == ErrKeyExpired && ErrorKind(err) != "key_expired" || tt.want == ErrAddressRefused && ErrorKind(err) != "address" {
				t.Errorf("ErrorKind = %q", ErrorKind(err))
			}
		})
	}

	t.Run("VerifyToken knows no address", func(t *testing.T) {
		keys := NewMemoryKeyStore()
		if err := keys.AddPublicKeys("alice", PublicKey{Key: k.ed.Public(), Restrictions: KeyRestrictions{From: []string{"*"}}}); err != nil {
			t.Fatal(err)
		}
		v, err := NewVerifier(keys, WithClock(func() time.Time { return testNow }))
		if err != nil {
			t.Fatal(err)
		}
		h := newHarness(t)
		if _, err := v.VerifyToken(context.Background(), h.token("alice", k.ed, testNow, nil), "", ""); !errors.Is(err, ErrAddressRefused) {
			t.Fatalf("err = %v, want ErrAddressRefused", err)
		}
	})

	t.Run("MemoryKeyStore refuses a host name in From", func(t *testing.T) {
		err := NewMemoryKeyStore().AddPublicKeys("alice", PublicKey{Key: k.ed.Public(), Restrictions: KeyRestrictions{From: []string{"host.example.com"}}})
		if !errors.Is(err, ErrKeyOption) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestExpiredKeyStopsVerifying: the same key verifies until its line's
// expiry-time, and not after, without the file changing.
func TestExpiredKeyStopsVerifying(t *testing.T) {
	k := loadTestKeys(t)
	dir := t.TempDir()
	line := `expiry-time="20261122120030Z" ` + ksFixture(t, "openssh_ed25519.pub.ssh") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "alice.pub"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := NewDirKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	v, err := NewVerifier(store, WithClock(func() time.Time { return h.now }))
	if err != nil {
		t.Fatal(err)
	}
	h.v = v
	if _, err := h.verify("GET", "http://api.example.com/v1/items", "JWT "+h.token("alice", k.ed, h.now, nil)); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	h.now = h.now.Add(31 * time.Second)
	if _, err := h.verify("GET", "http://api.example.com/v1/items", "JWT "+h.token("alice", k.ed, h.now, nil)); !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("after expiry: %v, want ErrKeyExpired", err)
	}
}

// FuzzParseKeyOptions feeds option strings to the authorized_keys option
// parser and the from= matcher.
func FuzzParseKeyOptions(f *testing.F) {
	for _, s := range []string{
		`no-pty`, `from="10.0.0.0/8,!10.1.*"`, `expiry-time="20270101Z"`, `cert-authority,principals="a,b"`,
		`command="x"`, `environment="A=\"b\""`, `from="`, `from=""`, `="x"`, `from="a"b"`, `principals="a"`,
		`expiry-time="99999999Z"`, `from="2001:db8::/32,fe80::1%eth0"`, `tunnel="1",restrict`,
	} {
		f.Add(s, "10.1.2.3")
	}
	f.Add(`from="*"`, "2001:db8::1")
	f.Fuzz(func(t *testing.T, options, addr string) {
		o, err := parseKeyOptions(strings.Split(options, ","))
		if err != nil {
			if !errors.Is(err, ErrKeyOption) {
				t.Fatalf("error without ErrKeyOption: %v", err)
			}
			return
		}
		if len(o.principals) > 0 && !o.certAuthority {
			t.Fatal("principals without cert-authority")
		}
		if err := o.restrictions.validate(); err != nil {
			t.Fatalf("accepted patterns that do not validate: %v", err)
		}
		if a, err := netip.ParseAddr(addr); err == nil {
			_ = o.restrictions.check(testNow, a)
		}
	})
}

// FuzzParseAuthorizedKeys feeds whole files to ParseAuthorizedKeys and
// ParseCertAuthorities: every key and CA returned is usable, and a CA never
// shows up among ParsePublicKeys' keys unless a plain line holds it too.
func FuzzParseAuthorizedKeys(f *testing.F) {
	ed, _ := os.ReadFile(keyPath("openssh_ed25519.pub.ssh"))
	p256, _ := os.ReadFile(keyPath("openssh_p256.pub.ssh"))
	pkix, _ := os.ReadFile(keyPath("pkcs8_p256.pub.pem"))
	for _, s := range []string{
		"cert-authority " + string(ed),
		`cert-authority,principals="a,b",from="10.0.0.0/8" ` + string(ed) + string(p256),
		`expiry-time="20300101Z" ` + string(p256) + string(pkix),
		`command="x" ` + string(ed),
		`principals="x" ` + string(ed),
		"# c\r\n" + string(ed),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ak, errs := ParseAuthorizedKeys(data)
		for _, k := range ak.Keys {
			if checkPublicKey(k.Key) != nil || k.Restrictions.validate() != nil {
				t.Fatalf("unusable key %+v", k)
			}
		}
		for _, ca := range ak.Authorities {
			if checkPublicKey(ca.Key) != nil || ca.Restrictions.validate() != nil || slices.Contains(ca.Principals, "") {
				t.Fatalf("unusable CA %+v", ca)
			}
			if fp, _ := Fingerprint(ca.Key); fp != ca.Fingerprint {
				t.Fatalf("CA fingerprint %s, want %s", ca.Fingerprint, fp)
			}
		}
		keys, _ := ParsePublicKeys(data)
		if len(keys) != len(ak.Keys) {
			t.Fatalf("ParsePublicKeys gave %d keys, ParseAuthorizedKeys %d", len(keys), len(ak.Keys))
		}
		for _, err := range errs {
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("not a LineError: %v", err)
			}
		}
		cas, _ := ParseCertAuthorities(data)
		for _, ca := range cas {
			if len(ca.Principals) > 0 || checkPublicKey(ca.Key) != nil {
				t.Fatalf("trusted-for-all CA %+v", ca)
			}
		}
	})
}
