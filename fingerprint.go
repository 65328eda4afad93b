package asymjwt

import (
	"crypto"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// Fingerprint returns the SHA-256 fingerprint of a public key in the form
// ssh-keygen -l prints it ("SHA256:" and unpadded base64). Tokens carry it as
// their "kid", so a verifier can pick the right key among a user's keys.
func Fingerprint(pub crypto.PublicKey) (string, error) {
	fp, err := fingerprint(pub)
	if err != nil {
		return "", errorf("Fingerprint: %w", err)
	}
	return fp, nil
}

func fingerprint(pub crypto.PublicKey) (string, error) {
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
	return ssh.FingerprintSHA256(sshPub), nil
}
