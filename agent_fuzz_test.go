package asymjwt

import (
	"math/big"
	"testing"

	"golang.org/x/crypto/ssh"
)

// FuzzECDSASSHToJWS feeds the converter of agent ECDSA signature blobs
// (mpint r, mpint s) arbitrary bytes: it must never panic, and what it
// accepts must be the fixed width JWS wants and hold the same r and s.
func FuzzECDSASSHToJWS(f *testing.F) {
	for _, rs := range [][2]*big.Int{
		{big.NewInt(1), big.NewInt(2)},
		{new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(7)}, // r with its top bit set
		{new(big.Int).Lsh(big.NewInt(1), 520), new(big.Int).Lsh(big.NewInt(1), 300)},
	} {
		f.Add(ssh.Marshal(struct{ R, S *big.Int }{rs[0], rs[1]}), uint8(0))
	}
	f.Add([]byte{0, 0, 0, 1}, uint8(1))
	sizes := [...]int{32, 48, 66}
	f.Fuzz(func(t *testing.T, blob []byte, which uint8) {
		size := sizes[int(which)%len(sizes)]
		out, err := ecdsaSSHToJWS(blob, size)
		if err != nil {
			return
		}
		if len(out) != 2*size {
			t.Fatalf("%d bytes for width %d", len(out), size)
		}
		var rs struct{ R, S *big.Int }
		if err := ssh.Unmarshal(blob, &rs); err != nil {
			t.Fatalf("accepted a blob x/crypto cannot read: %v", err)
		}
		if new(big.Int).SetBytes(out[:size]).Cmp(rs.R) != 0 || new(big.Int).SetBytes(out[size:]).Cmp(rs.S) != 0 {
			t.Fatalf("r or s changed")
		}
	})
}
