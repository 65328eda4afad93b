package edverify

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/fips140"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"filippo.io/edwards25519"
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
	long := bytes.Repeat([]byte("a"), 5000)
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

	// A key enters only with a signature it made: anyone can send a
	// token naming a stored key.
	if c.Verify(pub, []byte("other"), sig) {
		t.Fatal("wrong message verified")
	}
	if len(c.neg) != 0 {
		t.Fatalf("a key that verified nothing was remembered")
	}
	for range 3 {
		if !c.Verify(pub, msg, sig) {
			t.Fatal("valid signature refused")
		}
	}
	if len(c.neg) != 1 {
		t.Fatalf("cache holds %d keys after one key, want 1", len(c.neg))
	}
	p := c.neg[[32]byte(pub)]

	// The cache is keyed by the key's bytes, not by the slice: a caller
	// that changes its slice afterwards gets the new key's answer.
	other := bytes.Clone(pub)
	if !c.Verify(other, msg, sig) {
		t.Fatal("a copy of the key refused its signature")
	}
	other[0] ^= 1
	if c.Verify(other, msg, sig) {
		t.Error("a changed key verified the old key's signature")
	}
	if c.neg[[32]byte(pub)] != p || len(c.neg) != 1 {
		t.Error("the key's point was replaced or another added")
	}
	// The negated point of -A (the same y, the other sign bit) is a
	// different key.
	negKey := bytes.Clone(pub)
	negKey[31] ^= 0x80
	if c.Verify(negKey, msg, sig) {
		t.Error("the key with its sign bit flipped verified the key's signature")
	}
}

// testKeys returns n key pairs, each key's signature of msg beside it.
func testKeys(n int, msg []byte) (pubs []ed25519.PublicKey, sigs [][]byte) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range n {
		binary.LittleEndian.PutUint32(seed, uint32(i))
		priv := ed25519.NewKeyFromSeed(seed)
		pubs = append(pubs, priv.Public().(ed25519.PublicKey))
		sigs = append(sigs, ed25519.Sign(priv, msg))
	}
	return pubs, sigs
}

func TestCacheStartsOverWhenFull(t *testing.T) {
	for _, limit := range []int{0, 10} {
		c := Cache{limit: limit}
		max := cmp.Or(limit, MaxKeys)
		msg := []byte("m")
		pubs, sigs := testKeys(max+1, msg)
		for i := range pubs {
			if !c.Verify(pubs[i], msg, sigs[i]) {
				t.Fatalf("limit %d, key %d: valid signature refused", limit, i)
			}
			if n := len(c.neg); n > max {
				t.Fatalf("limit %d: cache holds %d keys", limit, n)
			}
		}
		if n := len(c.neg); n != 1 {
			t.Errorf("limit %d: after %d keys the cache holds %d, want 1 (started over)", limit, max+1, n)
		}
	}
}

// TestCacheConcurrentUse has goroutines verify the same keys in different
// orders, across several resets of a small cache.
func TestCacheConcurrentUse(t *testing.T) {
	c := Cache{limit: 16}
	msg := []byte("m")
	pubs, sigs := testKeys(40, msg)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 3 * len(pubs) {
				k := (i*7 + g*11) % len(pubs)
				if !c.Verify(pubs[k], msg, sigs[k]) {
					t.Error("valid signature refused")
					return
				}
				if c.Verify(pubs[k], []byte("n"), sigs[k]) {
					t.Error("wrong message verified")
					return
				}
				if c.Verify(pubs[(k+1)%len(pubs)], msg, sigs[k]) {
					t.Error("another key's signature verified")
					return
				}
				if n := c.Len(); n > c.limit {
					t.Errorf("cache holds %d keys, limit %d", n, c.limit)
					return
				}
			}
		})
	}
	wg.Wait()
}

// fieldOrder is p = 2^255 - 19.
var fieldOrder = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

// littleEndian32 encodes x, below 2^256, in 32 little-endian bytes.
func littleEndian32(x *big.Int) []byte {
	b := make([]byte, 32)
	x.FillBytes(b)
	slices.Reverse(b)
	return b
}

// specialKeys returns key encodings near the edges: y from 0 to 40 and from
// p-41 to p-1, the non-canonical y+p of those that fit in 255 bits, each
// with both sign bits, and the eight points of small order.
func specialKeys(t testing.TB) [][]byte {
	var ys []*big.Int
	for i := range int64(41) {
		ys = append(ys, big.NewInt(i), new(big.Int).Sub(fieldOrder, big.NewInt(i+1)), new(big.Int).Add(fieldOrder, big.NewInt(i)))
	}
	var keys [][]byte
	for _, y := range ys {
		if y.BitLen() > 255 {
			continue
		}
		for _, sign := range []byte{0, 0x80} {
			k := littleEndian32(y)
			k[31] |= sign
			keys = append(keys, k)
		}
	}
	for _, h := range smallOrder {
		keys = append(keys, mustHex(t, h))
	}
	return keys
}

// smallOrder are the canonical encodings of the eight points of small
// order.
var smallOrder = []string{
	"0100000000000000000000000000000000000000000000000000000000000000",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"0000000000000000000000000000000000000000000000000000000000000080",
	"0000000000000000000000000000000000000000000000000000000000000000",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
}

// trapSignature returns (R = B + [j](-A), S = 1) for the key pub that
// decodes to A, or false if it does not decode to a point of small order. For A of small order,
// R' = [k](-A) + B equals R when k = j modulo A's order: whether the
// signature verifies depends on k = H(R || key || msg), so a verifier that
// hashed anything but the key's bytes as given would disagree.
func trapSignature(pub []byte, j int) ([]byte, bool) {
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, false
	}
	if new(edwards25519.Point).MultByCofactor(a).Equal(edwards25519.NewIdentityPoint()) != 1 {
		return nil, false // not of small order: no message makes it valid
	}
	negA := new(edwards25519.Point).Negate(a)
	r := edwards25519.NewGeneratorPoint()
	for range j {
		r.Add(r, negA)
	}
	one := make([]byte, 32)
	one[0] = 1
	return append(r.Bytes(), one...), true
}

// forge returns a message for which crypto/ed25519 accepts pub's
// trapSignature(pub, j).
func forge(pub []byte, j int) (msg, sig []byte, ok bool) {
	sig, ok = trapSignature(pub, j)
	if !ok {
		return nil, nil, false
	}
	for ctr := range 64 {
		msg = binary.LittleEndian.AppendUint64(nil, uint64(ctr))
		if ed25519.Verify(pub, msg, sig) {
			return msg, sig, true
		}
	}
	return nil, nil, false
}

// TestVerifyAgreesOnSpecialKeys: keys of small order, in every encoding
// crypto/ed25519 accepts, with signatures it accepts because of the hash
// and others it refuses.
func TestVerifyAgreesOnSpecialKeys(t *testing.T) {
	var c Cache
	one := make([]byte, 32)
	one[0] = 1
	trivial := append(edwards25519.NewGeneratorPoint().Bytes(), one...)
	forged, valid := 0, 0
	for _, pub := range specialKeys(t) {
		type pair struct{ msg, sig []byte }
		pairs := []pair{{[]byte("hello"), trivial}, {[]byte("hello"), make([]byte, 64)}}
		for _, r := range smallOrder {
			pairs = append(pairs, pair{[]byte("hello"), append(mustHex(t, r), make([]byte, 32)...)})
		}
		for j := range 8 {
			if msg, sig, ok := forge(pub, j); ok {
				forged++
				pairs = append(pairs, pair{msg, sig})
			}
		}
		for _, p := range pairs {
			want := ed25519.Verify(pub, p.msg, p.sig)
			if want {
				valid++
			}
			for call := range 2 {
				if got := c.Verify(pub, p.msg, p.sig); got != want {
					t.Errorf("key %x, signature %x, call %d: Verify = %v, crypto/ed25519 says %v", pub, p.sig, call, got, want)
				}
			}
		}
	}
	// The test is only as good as its valid signatures.
	if forged < 40 || valid < 40 {
		t.Fatalf("only %d forged and %d valid signatures: the test lost its teeth", forged, valid)
	}
}

// TestVerifyMessageLengths: messages across the SHA-512 block boundaries
// and long ones.
func TestVerifyMessageLengths(t *testing.T) {
	var c Cache
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := priv.Public().(ed25519.PublicKey)
	for _, n := range []int{0, 1, 47, 48, 63, 64, 111, 112, 127, 128, 960, 961, 1024, 5000, 1 << 20} {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		sig := ed25519.Sign(priv, msg)
		if !c.Verify(pub, msg, sig) {
			t.Errorf("%d bytes: valid signature refused", n)
		}
		if n > 0 {
			msg[n-1] ^= 1
			if c.Verify(pub, msg, sig) {
				t.Errorf("%d bytes: last byte changed, accepted", n)
			}
		}
	}
}

// TestVerifyAgreesOnRandomInput: random keys (about half are points) and
// signatures.
func TestVerifyAgreesOnRandomInput(t *testing.T) {
	var c Cache
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	for i := range 2000 {
		pub, sig := make([]byte, 32), make([]byte, 64)
		for _, b := range [][]byte{pub, sig} {
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
		}
		if i%2 == 0 {
			sig[63] &= 0x0f
		}
		msg := []byte{byte(i)}
		if got, want := c.Verify(pub, msg, sig), ed25519.Verify(pub, msg, sig); got != want {
			t.Fatalf("key %x, signature %x: Verify = %v, crypto/ed25519 says %v", pub, sig, got, want)
		}
	}
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
// made with a fuzzed seed and message and then, by mode, left alone,
// changed by xoring tweak into the signature or the key, or replaced by
// tweak outright; or, in the last mode, on a key taken from tweak (any 32
// bytes, so non-canonical and small-order encodings) with a signature
// forged for it whose validity turns on the hash.
func FuzzVerify(f *testing.F) {
	f.Add(make([]byte, 32), []byte("msg"), byte(0), []byte{})
	f.Add(make([]byte, 32), []byte("msg"), byte(1), []byte{0, 0, 0, 1})
	f.Add([]byte("seed"), bytes.Repeat([]byte("x"), 1100), byte(2), []byte{1})
	f.Add([]byte("seed"), []byte{}, byte(3), bytes.Repeat([]byte{0xff}, 64))
	f.Add([]byte{}, []byte("m"), byte(4|3<<3), mustHex(f, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"))
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
		switch mode % 5 {
		case 1:
			xor(sig)
		case 2:
			xor(pub)
		case 3:
			sig = tweak
		case 4:
			if len(tweak) < 32 {
				return
			}
			pub = tweak[:32]
			if trap, ok := trapSignature(pub, int(mode/5)%8); ok {
				sig = trap
			}
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
