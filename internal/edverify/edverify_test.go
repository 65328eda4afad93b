package edverify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/fips140"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// groupOrder is l = 2^252 + 27742317777372353535851937790883648493, little
// endian.
const groupOrder = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"

// addOrder returns s + l (little endian, 32 bytes), a non-canonical
// encoding of the scalar s when s is small.
func addOrder(t testing.TB, s []byte) []byte {
	l := mustHex(t, groupOrder)
	out := make([]byte, 32)
	carry := 0
	for i := range out {
		v := int(s[i]) + int(l[i]) + carry
		out[i], carry = byte(v), v>>8
	}
	return out
}

func TestVerifyAgreesWithStdlib(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	msg := []byte("eyJhbGciOiJFZERTQSJ9.eyJ1c2VybmFtZSI6InN2YyJ9")
	sig := ed25519.Sign(priv, msg)
	long := bytes.Repeat([]byte("a"), stackHashLen) // past the stack buffer
	longSig := ed25519.Sign(priv, long)

	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return c
	}
	// S + l: the same scalar, not canonically encoded, which RFC 8032
	// and crypto/ed25519 refuse.
	highS := append(bytes.Clone(sig[:32]), addOrder(t, sig[32:])...)

	// Keys of small order, which crypto/ed25519 accepts: the identity
	// (y = 1), its non-canonical encoding y = p + 1, and (0, -1). With R
	// = B and S = 1, R' = [k](-A) + B, which is B for the identity.
	identity := mustHex(t, "0100000000000000000000000000000000000000000000000000000000000000")
	identityNC := mustHex(t, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	minusOne := mustHex(t, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	basePoint := mustHex(t, "5866666666666666666666666666666666666666666666666666666666666666")
	one := make([]byte, 32)
	one[0] = 1
	trivialSig := append(bytes.Clone(basePoint), one...)
	// Not a point: no x for y = 2.
	notPoint := mustHex(t, "0200000000000000000000000000000000000000000000000000000000000000")

	tests := []struct {
		name     string
		pub      []byte
		msg, sig []byte
		want     bool
	}{
		{"valid", pub, msg, sig, true},
		{"valid long message", pub, long, longSig, true},
		{"empty message", pub, nil, ed25519.Sign(priv, nil), true},
		{"other message", pub, []byte("x"), sig, false},
		{"R flipped", pub, msg, flip(sig, 0), false},
		{"S flipped", pub, msg, flip(sig, 40), false},
		{"key flipped", flip(pub, 3), msg, sig, false},
		{"S plus order", pub, msg, highS, false},
		{"S high bits", pub, msg, append(bytes.Clone(sig[:63]), sig[63]|0x80), false},
		{"short signature", pub, msg, sig[:63], false},
		{"long signature", pub, msg, append(bytes.Clone(sig), 0), false},
		{"no signature", pub, msg, nil, false},
		{"identity key", identity, msg, trivialSig, true},
		{"identity key, non-canonical", identityNC, msg, trivialSig, true},
		{"order-2 key", minusOne, msg, trivialSig, ed25519.Verify(minusOne, msg, trivialSig)},
		{"not a point", notPoint, msg, sig, false},
	}
	var c Cache
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if std := ed25519.Verify(tt.pub, tt.msg, tt.sig); std != tt.want {
				t.Fatalf("crypto/ed25519 says %v, the test %v", std, tt.want)
			}
			for _, name := range []string{"first", "cached"} {
				if got := c.Verify(tt.pub, tt.msg, tt.sig); got != tt.want {
					t.Errorf("%s call: Verify = %v, want %v", name, got, tt.want)
				}
			}
			var nilCache *Cache
			if got := nilCache.Verify(tt.pub, tt.msg, tt.sig); got != tt.want {
				t.Errorf("nil Cache: Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVerifyKeyOfAnotherLength(t *testing.T) {
	// crypto/ed25519 panics on these; a KeyStore may hand them over.
	var c Cache
	for _, n := range []int{0, 31, 33, 64} {
		if c.Verify(make([]byte, n), []byte("m"), make([]byte, 64)) {
			t.Errorf("a %d-byte key verified", n)
		}
		var nilCache *Cache
		if nilCache.Verify(make([]byte, n), []byte("m"), make([]byte, 64)) {
			t.Errorf("nil Cache: a %d-byte key verified", n)
		}
	}
}

func TestCacheRemembersDecodedKeys(t *testing.T) {
	var c Cache
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := priv.Public().(ed25519.PublicKey)
	msg := []byte("m")
	sig := ed25519.Sign(priv, msg)
	for range 3 {
		if !c.Verify(pub, msg, sig) {
			t.Fatal("valid signature refused")
		}
	}
	if len(c.neg) != 1 {
		t.Fatalf("cache holds %d keys after one key, want 1", len(c.neg))
	}
	p := c.neg[[32]byte(pub)]

	// A caller that changes its key slice afterwards gets the new key's
	// answer: the cache is keyed by value, not by slice.
	other := bytes.Clone(pub)
	c.Verify(other, msg, sig)
	other[0] ^= 1
	if c.Verify(other, msg, sig) {
		t.Error("a changed key verified the old key's signature")
	}
	if c.neg[[32]byte(pub)] != p {
		t.Error("the key's point was replaced")
	}

	// Invalid points are not remembered.
	before := len(c.neg)
	notPoint := mustHex(t, "0200000000000000000000000000000000000000000000000000000000000000")
	c.Verify(notPoint, msg, sig)
	if _, ok := c.neg[[32]byte(notPoint)]; ok || len(c.neg) > before+1 {
		t.Error("an invalid key was remembered")
	}
}

func TestCacheStartsOverWhenFull(t *testing.T) {
	var c Cache
	msg := []byte("m")
	seed := make([]byte, 32)
	for i := range MaxKeys + 1 {
		seed[0], seed[1] = byte(i), byte(i>>8)
		priv := ed25519.NewKeyFromSeed(seed)
		if !c.Verify(priv.Public().(ed25519.PublicKey), msg, ed25519.Sign(priv, msg)) {
			t.Fatalf("key %d: valid signature refused", i)
		}
		if n := len(c.neg); n > MaxKeys {
			t.Fatalf("cache holds %d keys, more than %d", n, MaxKeys)
		}
	}
	if n := len(c.neg); n != 1 {
		t.Errorf("after %d keys the cache holds %d, want 1 (started over)", MaxKeys+1, n)
	}
}

func TestCacheConcurrentUse(t *testing.T) {
	var c Cache
	msg := []byte("m")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(g*50 + i%5)}, 32))
				pub := priv.Public().(ed25519.PublicKey)
				sig := ed25519.Sign(priv, msg)
				if !c.Verify(pub, msg, sig) {
					t.Error("valid signature refused")
					return
				}
				if c.Verify(pub, []byte("n"), sig) {
					t.Error("wrong message verified")
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestFIPSModeUsesStdlib runs the test binary again with GODEBUG=fips140=on
// and checks that there every call goes to crypto/ed25519.
func TestFIPSModeUsesStdlib(t *testing.T) {
	if os.Getenv("EDVERIFY_FIPS_CHILD") == "1" {
		if !fips140.Enabled() {
			t.Fatal("GODEBUG=fips140=on did not enable FIPS 140-3 mode")
		}
		var c Cache
		priv := ed25519.NewKeyFromSeed(make([]byte, 32))
		msg := []byte("m")
		if !c.Verify(priv.Public().(ed25519.PublicKey), msg, ed25519.Sign(priv, msg)) {
			t.Fatal("valid signature refused")
		}
		if len(c.neg) != 0 {
			t.Fatal("FIPS mode: the cache decoded a key itself")
		}
		return
	}
	if testing.Short() {
		t.Skip("runs the test binary again")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFIPSModeUsesStdlib$", "-test.v")
	cmd.Env = append(os.Environ(), "EDVERIFY_FIPS_CHILD=1", "GODEBUG=fips140=on")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestFIPSModeUsesStdlib") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// FuzzVerify checks that Verify agrees with crypto/ed25519 on signatures
// made with a fuzzed seed and message and then, by mode, left alone or
// changed by xoring tweak into the signature or the key, or replaced by
// tweak outright.
func FuzzVerify(f *testing.F) {
	f.Add(make([]byte, 32), []byte("msg"), byte(0), []byte{})
	f.Add(make([]byte, 32), []byte("msg"), byte(1), []byte{0, 0, 0, 1})
	f.Add([]byte("seed"), bytes.Repeat([]byte("x"), 1100), byte(2), []byte{1})
	f.Add([]byte("seed"), []byte{}, byte(3), bytes.Repeat([]byte{0xff}, 64))
	var c Cache
	f.Fuzz(func(t *testing.T, seed, msg []byte, mode byte, tweak []byte) {
		var s [32]byte
		copy(s[:], seed)
		priv := ed25519.NewKeyFromSeed(s[:])
		pub := bytes.Clone(priv.Public().(ed25519.PublicKey))
		sig := ed25519.Sign(priv, msg)
		xor := func(dst []byte) {
			for i := range min(len(dst), len(tweak)) {
				dst[i] ^= tweak[i]
			}
		}
		switch mode % 4 {
		case 1:
			xor(sig)
		case 2:
			xor(pub)
		case 3:
			sig = tweak
		}
		want := ed25519.Verify(pub, msg, sig)
		if got := c.Verify(pub, msg, sig); got != want {
			t.Fatalf("Verify = %v, crypto/ed25519 says %v", got, want)
		}
		if got := c.Verify(pub, msg, sig); got != want {
			t.Fatalf("cached: Verify = %v, crypto/ed25519 says %v", got, want)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := priv.Public().(ed25519.PublicKey)
	msg := bytes.Repeat([]byte("a"), 300) // a token's signing input
	sig := ed25519.Sign(priv, msg)
	b.Run("stdlib", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("cache", func(b *testing.B) {
		var c Cache
		b.ReportAllocs()
		for b.Loop() {
			if !c.Verify(pub, msg, sig) {
				b.Fatal("refused")
			}
		}
	})
}
