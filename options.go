package asymjwt

import (
	"log/slog"
	"time"
)

// Options follow one pattern across the package: each constructor takes
// options of its own type (a [SignerOption] for [NewSigner], a
// [VerifierOption] for [NewVerifier], ...), and an idea shared by several
// constructors has one option that is of each of their types: [WithClock]
// sets the clock of a Signer, a Verifier and a MemoryNonceStore, and
// [WithLogger] the logger of a Verifier and a DirKeyStore. An option given a
// value it cannot use (nil, out of range) makes the constructor fail with an
// error wrapping [ErrInvalidOption]; leaving an option out gives the
// documented default.

// SignerOption configures [NewSigner].
type SignerOption interface{ applySigner(*signerConfig) error }

// VerifierOption configures [NewVerifier].
type VerifierOption interface{ applyVerifier(*Verifier) error }

// MemoryNonceOption configures [NewMemoryNonceStore].
type MemoryNonceOption interface {
	applyNonceStore(*MemoryNonceStore) error
}

// DirKeyStoreOption configures [NewDirKeyStore].
type DirKeyStoreOption interface{ applyDirKeyStore(*DirKeyStore) error }

// KeyOption configures how [KeyFromFile] and [ParseKey] read a key.
type KeyOption interface{ applyKey(*keyOptions) error }

// IssuerOption configures [NewIssuer].
type IssuerOption interface{ applyIssuer(*Issuer) error }

// RemoteKeySetOption configures [NewRemoteKeySet].
type RemoteKeySetOption interface{ applyRemoteKeySet(*RemoteKeySet) error }

// TokenEndpointOption configures [NewTokenEndpoint].
type TokenEndpointOption interface{ applyTokenEndpoint(*TokenEndpoint) error }

// MemoryRefreshOption configures [NewMemoryRefreshStore].
type MemoryRefreshOption interface {
	applyRefreshStore(*MemoryRefreshStore) error
}

// ExchangeOption configures the token sources of [NewTokenSource] and
// [NewClientCredentialsTokenSource].
type ExchangeOption interface{ applyExchange(*exchangeConfig) error }

type signerOptionFunc func(*signerConfig) error

func (f signerOptionFunc) applySigner(c *signerConfig) error { return f(c) }

type verifierOptionFunc func(*Verifier) error

func (f verifierOptionFunc) applyVerifier(v *Verifier) error { return f(v) }

type nonceOptionFunc func(*MemoryNonceStore) error

func (f nonceOptionFunc) applyNonceStore(s *MemoryNonceStore) error { return f(s) }

type keyOptionFunc func(*keyOptions) error

func (f keyOptionFunc) applyKey(o *keyOptions) error { return f(o) }

type dirKeyStoreOptionFunc func(*DirKeyStore) error

func (f dirKeyStoreOptionFunc) applyDirKeyStore(s *DirKeyStore) error { return f(s) }

type remoteKeySetOptionFunc func(*RemoteKeySet) error

func (f remoteKeySetOptionFunc) applyRemoteKeySet(s *RemoteKeySet) error { return f(s) }

type tokenEndpointOptionFunc func(*TokenEndpoint) error

func (f tokenEndpointOptionFunc) applyTokenEndpoint(e *TokenEndpoint) error { return f(e) }

type refreshOptionFunc func(*MemoryRefreshStore) error

func (f refreshOptionFunc) applyRefreshStore(s *MemoryRefreshStore) error { return f(s) }

type exchangeOptionFunc func(*exchangeConfig) error

func (f exchangeOptionFunc) applyExchange(c *exchangeConfig) error { return f(c) }

// ClockOption sets a clock; [WithClock] makes one. It is a [SignerOption], a
// [VerifierOption], a [MemoryNonceOption], an [IssuerOption], a
// [RemoteKeySetOption], a [MemoryRefreshOption] and a [DirKeyStoreOption].
type ClockOption struct{ now func() time.Time }

// WithClock sets the clock that a [Signer] reads its tokens' "time" from,
// that a [Verifier] checks "time" against (and its [TokenEndpoint] the
// assertions and the tokens it issues), that a [MemoryNonceStore] and a
// [MemoryRefreshStore] measure an entry's life with, that an [Issuer] tells
// when a retired key's tokens have expired by, that a [RemoteKeySet] times
// its fetches with, and that a [DirKeyStore] measures [WithRecheckInterval]
// on. The default is time.Now; tests inject a fixed or
// stepping clock. now must not be nil.
func WithClock(now func() time.Time) ClockOption { return ClockOption{now} }

func (o ClockOption) check() error {
	if o.now == nil {
		return optionError("WithClock", "nil clock")
	}
	return nil
}

func (o ClockOption) applySigner(c *signerConfig) error {
	c.now = o.now
	return o.check()
}

func (o ClockOption) applyVerifier(v *Verifier) error {
	v.now = o.now
	return o.check()
}

func (o ClockOption) applyNonceStore(s *MemoryNonceStore) error {
	s.now = o.now
	return o.check()
}

func (o ClockOption) applyIssuer(is *Issuer) error {
	is.now = o.now
	return o.check()
}

func (o ClockOption) applyRemoteKeySet(s *RemoteKeySet) error {
	s.now = o.now
	return o.check()
}

func (o ClockOption) applyRefreshStore(s *MemoryRefreshStore) error {
	s.now = o.now
	return o.check()
}

func (o ClockOption) applyDirKeyStore(s *DirKeyStore) error {
	s.now = o.now
	return o.check()
}

// LoggerOption sets a logger; [WithLogger] makes one. It is a
// [VerifierOption] and a [DirKeyStoreOption].
type LoggerOption struct{ logger *slog.Logger }

// WithLogger sends what a [Verifier] refuses (a line per refused request,
// at level Info, Warn when a store could not answer) and accepts (a line per
// request, at level Debug, or Info when an OpenSSH certificate vouched for
// the key, with its key ID, serial and CA: the audit trail sshd keeps), and
// what a [DirKeyStore] skips (a line per key line it could not use, at
// level Warn) to logger. Lines name the error kind and cause, the user and
// key fingerprint, never a token, an Authorization header or key material.
// Without this option nothing is logged; logger must not be nil.
func WithLogger(logger *slog.Logger) LoggerOption { return LoggerOption{logger} }

func (o LoggerOption) check() error {
	if o.logger == nil {
		return optionError("WithLogger", "nil logger (leave the option out to log nothing)")
	}
	return nil
}

func (o LoggerOption) applyVerifier(v *Verifier) error {
	v.logger = o.logger
	return o.check()
}

func (o LoggerOption) applyDirKeyStore(s *DirKeyStore) error {
	s.logger = o.logger
	return o.check()
}
