package asymjwt

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

// The examples of RFC 9530 (Appendix B, and §2's example): the content
// {"hello": "world"}, without a trailing newline.
const (
	emptySHA256   = "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
	rfc9530Body   = `{"hello": "world"}`
	rfc9530SHA256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
	rfc9530SHA512 = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
)

func TestRFC9530Vectors(t *testing.T) {
	got, err := ContentDigest(strings.NewReader(rfc9530Body))
	if err != nil || got != rfc9530SHA256 {
		t.Fatalf("ContentDigest(%s) = %q, %v; want %q", rfc9530Body, got, err, rfc9530SHA256)
	}
	s256, s512 := sha256.Sum256([]byte(rfc9530Body)), sha512.Sum512([]byte(rfc9530Body))
	if m := appendDigestMember(nil, 1, s512[:]); string(m) != rfc9530SHA512 {
		t.Fatalf("sha-512 member %s, want %s", m, rfc9530SHA512)
	}
	set, err := parseContentDigest([]string{rfc9530SHA256 + ", " + rfc9530SHA512})
	if err != nil || !bytes.Equal(set[0], s256[:]) || !bytes.Equal(set[1], s512[:]) {
		t.Fatalf("parsed %x, %v", set, err)
	}
	if got, _ := ContentDigest(nil); got != emptySHA256 {
		t.Fatalf("ContentDigest(nil) = %s, want %s", got, emptySHA256)
	}
	// Read errors are reported.
	if _, err := ContentDigest(iotest.ErrReader(errors.New("disk on fire"))); err == nil || !strings.HasPrefix(err.Error(), "asymjwt: ") {
		t.Fatalf("read error: %v", err)
	}
}

func TestParseContentDigest(t *testing.T) {
	s256 := sha256.Sum256([]byte(rfc9530Body))
	s512 := sha512.Sum512([]byte(rfc9530Body))
	unpadded := "sha-256=:" + base64.RawStdEncoding.EncodeToString(s256[:]) + ":"
	tests := []struct {
		name    string
		lines   []string
		want256 []byte
		want512 []byte
		err     error
	}{
		{"none", nil, nil, nil, nil},
		{"sha-256", []string{rfc9530SHA256}, s256[:], nil, nil},
		{"sha-512", []string{rfc9530SHA512}, nil, s512[:], nil},
		{"both, one line", []string{rfc9530SHA512 + "," + rfc9530SHA256}, s256[:], s512[:], nil},
		{"both, two lines", []string{rfc9530SHA256, rfc9530SHA512}, s256[:], s512[:], nil},
		{"unpadded base64", []string{unpadded}, s256[:], nil, nil},
		{"OWS around", []string{" \t" + rfc9530SHA256 + " \t"}, s256[:], nil, nil},
		{"parameters ignored", []string{rfc9530SHA256 + ";x=1"}, s256[:], nil, nil},
		{"unknown algorithms ignored", []string{"md5=:XrY7u+Ae7tCTyyK7j1rNww==:, unixsum=30637, " + rfc9530SHA256}, s256[:], nil, nil},
		{"only unknown algorithms", []string{"md5=:XrY7u+Ae7tCTyyK7j1rNww==:, sha=:aGk=:"}, nil, nil, nil},
		{"upper-case algorithm is not sha-256", []string{"SHA-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"}, nil, nil, errDigestSyntax},
		{"sha-256 twice", []string{rfc9530SHA256, rfc9530SHA256}, nil, nil, errDigestTwice},
		{"sha-256 short", []string{"sha-256=:AAAA:"}, nil, nil, errDigestValue},
		{"sha-256 of sha-512 size", []string{"sha-256=:" + rfc9530SHA512[len("sha-512=:"):]}, nil, nil, errDigestValue},
		{"sha-256 a token", []string{"sha-256=abc"}, nil, nil, errDigestValue},
		{"sha-256 a string", []string{`sha-256="X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="`}, nil, nil, errDigestValue},
		{"old Digest header syntax", []string{"SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="}, nil, nil, errDigestSyntax},
		{"trailing comma", []string{rfc9530SHA256 + ","}, nil, nil, errDigestSyntax},
		{"garbage", []string{"\x00"}, nil, nil, errDigestSyntax},
		{"too long", []string{rfc9530SHA256 + ", x=" + strings.Repeat("a", maxContentDigestLen)}, nil, nil, errDigestLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := parseContentDigest(tt.lines)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(set[0], tt.want256) || !bytes.Equal(set[1], tt.want512) {
				t.Fatalf("got %x, want %x and %x", set, tt.want256, tt.want512)
			}
		})
	}
}

func TestParseDigestClaim(t *testing.T) {
	tests := []struct {
		claim string
		alg   int
		ok    bool
	}{
		{rfc9530SHA256, 0, true},
		{rfc9530SHA512, 1, true},
		{emptySHA256, 0, true},
		{rfc9530SHA256 + ", " + rfc9530SHA512, -1, false},
		{"md5=:XrY7u+Ae7tCTyyK7j1rNww==:", -1, false},
		{"", -1, false},
		{"sha-256", -1, false},
	}
	for _, tt := range tests {
		alg, sum, err := parseDigestClaim(tt.claim)
		if (err == nil) != tt.ok || alg != tt.alg || (tt.ok && len(sum) != digestAlgs[alg].hash.Size()) {
			t.Errorf("parseDigestClaim(%q) = %d, %x, %v", tt.claim, alg, sum, err)
		}
	}
}

func TestDigestClaimFromHeader(t *testing.T) {
	tests := []struct {
		lines []string
		want  string
	}{
		{[]string{rfc9530SHA256}, rfc9530SHA256},
		{[]string{rfc9530SHA512}, rfc9530SHA512},
		{[]string{rfc9530SHA512 + ", " + rfc9530SHA256}, rfc9530SHA256},
		{[]string{"md5=:XrY7u+Ae7tCTyyK7j1rNww==:"}, ""},
		{[]string{"sha-256=nope"}, ""},
	}
	for _, tt := range tests {
		got, err := digestClaimFromHeader(tt.lines)
		if string(got) != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("digestClaimFromHeader(%q) = %q, %v; want %q", tt.lines, got, err, tt.want)
		}
	}
}

// FuzzContentDigest checks that any header is parsed without panicking,
// that what it finds has the digests' sizes, and that a header rebuilt from
// it parses to the same digests.
func FuzzContentDigest(f *testing.F) {
	for _, s := range []string{rfc9530SHA256, rfc9530SHA256 + ", " + rfc9530SHA512, "md5=:aGk=:, unixsum=30637", "sha-256=:AA==:", "sha-256=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		set, err := parseContentDigest([]string{s})
		if err != nil {
			return
		}
		var members []string
		for i, d := range set {
			if d == nil {
				continue
			}
			if len(d) != digestAlgs[i].hash.Size() {
				t.Fatalf("%q: %s digest of %d bytes", s, digestAlgs[i].name, len(d))
			}
			members = append(members, string(appendDigestMember(nil, i, d)))
		}
		again, err := parseContentDigest([]string{strings.Join(members, ", ")})
		if err != nil || !equalSets(again, set) {
			t.Fatalf("%q parsed to %x; rebuilt, to %x (%v)", s, set, again, err)
		}
	})
}

func equalSets(a, b digestSet) bool {
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
