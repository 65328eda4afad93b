package asymjwt

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	_ "crypto/sha512" // sha-512 digests
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/asymjwt/asymjwt/internal/sfv"
)

// A request body is bound through the Content-Digest header of RFC 9530: a
// Structured Field dictionary of digests, "sha-256=:<base64>:". The client
// sends it, the token's "hcd" claim holds the same digest, and the verifier
// checks the header against the claim and the body against the header.

// contentDigestHeader is the header's canonical name.
const contentDigestHeader = "Content-Digest"

// maxContentDigestLen bounds the Content-Digest field the verifier reads;
// sha-256 and sha-512 together take under 150 bytes.
const maxContentDigestLen = 4 << 10

// digestAlg is a digest algorithm of the RFC 9530 registry that this
// package computes. The others (md5, sha, unixsum, ...) are ignored, as
// RFC 9530 §5 tells recipients to do with algorithms they do not support.
type digestAlg struct {
	name string
	hash crypto.Hash
}

// digestAlgs is the table of supported digest algorithms, the one place
// that knows them.
var digestAlgs = [...]digestAlg{
	{"sha-256", crypto.SHA256},
	{"sha-512", crypto.SHA512},
}

// digestAlgIndex returns the index in digestAlgs of the algorithm named
// name (exactly, as RFC 8941 keys are lower-case), or -1.
func digestAlgIndex(name string) int {
	for i := range digestAlgs {
		if digestAlgs[i].name == name {
			return i
		}
	}
	return -1
}

// digestSet holds at most one digest per supported algorithm.
type digestSet [len(digestAlgs)][]byte

func (s *digestSet) empty() bool {
	for _, d := range s {
		if d != nil {
			return false
		}
	}
	return true
}

// matchesEmpty reports whether every digest in s is the digest of no bytes.
func (s *digestSet) matchesEmpty() bool {
	for i, d := range s {
		if d != nil && !bytes.Equal(d, digestAlgs[i].hash.New().Sum(nil)) {
			return false
		}
	}
	return true
}

var (
	errDigestSyntax = errors.New("not a structured field dictionary")
	errDigestValue  = errors.New("a sha-256 or sha-512 member is not a byte sequence of the digest's size")
	errDigestTwice  = errors.New("an algorithm appears twice")
	errDigestLong   = errors.New("longer than 4096 bytes")
	errDigestNone   = errors.New("no sha-256 or sha-512 digest")
)

// parseContentDigest reads the lines of a Content-Digest field (RFC 9530
// §2) as one dictionary, as RFC 8941 §4.2 combines them. Members of
// unknown algorithms are ignored, whatever their value; a supported
// algorithm must hold a byte sequence of its digest's size, once.
func parseContentDigest(lines []string) (digestSet, error) {
	var set digestSet
	field := ""
	switch len(lines) {
	case 0:
	case 1:
		field = lines[0]
	default:
		field = strings.Join(lines, ", ")
	}
	if len(field) > maxContentDigestLen {
		return set, errDigestLong
	}
	err := sfv.ScanDictionary(trimOWS(field), func(key string, kind sfv.Kind, raw string) error {
		i := digestAlgIndex(key)
		if i < 0 {
			return nil
		}
		if set[i] != nil {
			return errDigestTwice
		}
		if kind != sfv.Bytes {
			return errDigestValue
		}
		sum, err := sfv.DecodeBytes(raw)
		if err != nil || len(sum) != digestAlgs[i].hash.Size() {
			return errDigestValue
		}
		set[i] = sum
		return nil
	})
	if errors.Is(err, sfv.ErrSyntax) {
		return set, errDigestSyntax
	}
	return set, err
}

// parseDigestClaim reads an "hcd" claim: exactly one dictionary member of a
// supported algorithm, as in the header ("sha-256=:<base64>:").
func parseDigestClaim(claim string) (alg int, sum []byte, err error) {
	set, err := parseContentDigest([]string{claim})
	if err != nil {
		return -1, nil, err
	}
	alg = -1
	for i, d := range set {
		if d != nil {
			if alg >= 0 {
				return -1, nil, errors.New("more than one digest")
			}
			alg, sum = i, d
		}
	}
	if alg < 0 {
		return -1, nil, errDigestNone
	}
	return alg, sum, nil
}

// digestClaimFromHeader picks the digest a token binds from a request's
// Content-Digest header: sha-256, else sha-512.
func digestClaimFromHeader(lines []string) ([]byte, error) {
	set, err := parseContentDigest(lines)
	if err != nil {
		return nil, fmt.Errorf("Content-Digest header: %w", err)
	}
	for i, d := range set {
		if d != nil {
			return appendDigestMember(nil, i, d), nil
		}
	}
	return nil, fmt.Errorf("Content-Digest header: %w", errDigestNone)
}

// appendDigestMember appends "<alg>=:<base64>:" to dst.
func appendDigestMember(dst []byte, alg int, sum []byte) []byte {
	dst = append(dst, digestAlgs[alg].name...)
	dst = append(dst, "=:"...)
	dst = base64.StdEncoding.AppendEncode(dst, sum)
	return append(dst, ':')
}

// sha256Member is the size of "sha-256=:<base64>:".
const sha256Member = len("sha-256=::") + 44

// ContentDigest reads body to its end and returns its Content-Digest
// (RFC 9530) header value, "sha-256=:<base64>:", as the [Transport] sends
// it. With this header set on a request, [Signer.Sign] binds the body too.
// A nil body is empty.
func ContentDigest(body io.Reader) (string, error) {
	h := sha256.New()
	if body != nil {
		if _, err := io.Copy(h, body); err != nil {
			return "", errorf("reading the body for its digest: %w", err)
		}
	}
	var sum [sha256.Size]byte
	var buf [sha256Member]byte
	return string(appendDigestMember(buf[:0], 0, h.Sum(sum[:0]))), nil
}
