package asymjwt

import "time"

// VerifierMetrics receives the timings of a [Verifier], for a metrics
// system such as Prometheus or OpenTelemetry, which this package does not
// depend on: a server adapts its own collectors to these three methods and
// passes them with [WithMetrics].
//
// The methods are called on the request's goroutine, synchronously, so
// they must be fast and safe for concurrent use by multiple goroutines.
// Durations are measured on the monotonic wall clock, not on the clock of
// [WithClock].
//
// Methods may be added in later versions only through a new interface that
// a VerifierMetrics may also implement (checked with a type assertion), as
// http.Flusher extends http.ResponseWriter; this one will not change.
type VerifierMetrics interface {
	// Verified is called once for every call of [Verifier.Verify] and
	// [Verifier.VerifyToken], with result "ok" for an accepted token and
	// otherwise the error's kind as [ErrorKind] names it ("no_token",
	// "stale", "replay", "unavailable", ...), and how long the check took,
	// the stores included.
	Verified(result string, d time.Duration)

	// KeyStoreLookup is called after each call of the [KeyStore], with how
	// long it took and the error it returned (nil when it answered, also
	// for an unknown user).
	KeyStoreLookup(d time.Duration, err error)

	// NonceStoreUse is called after each call of the [NonceStore], with how
	// long it took and the error it returned: nil for a fresh nonce, an
	// error wrapping [ErrReplay] for a replay (the store answered), any
	// other error when the store could not answer.
	NonceStoreUse(d time.Duration, err error)
}

// BodyMetrics is implemented by a [VerifierMetrics] that also counts the
// bodies refused after their request's headers verified: a body that does
// not match the digest its token binds, found as the handler reads it (see
// [Verifier.Verify]). Verified has already reported such a request as "ok";
// BodyRefused is then called once, on the goroutine reading the body, with
// the error's kind as [ErrorKind] names it ("binding").
type BodyMetrics interface {
	VerifierMetrics
	BodyRefused(result string)
}

// WithMetrics reports each verification's result and duration, and the
// latency of the key store and of the nonce store, to m (see
// [VerifierMetrics]), and the bodies refused after their headers verified
// when m is a [BodyMetrics]. Without it no clock is read for metrics. m
// must not be nil.
func WithMetrics(m VerifierMetrics) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if m == nil {
			return optionError("WithMetrics", "nil VerifierMetrics")
		}
		v.metrics = m
		v.bodyMetrics, _ = m.(BodyMetrics)
		return nil
	})
}

// resultKind is the result label of [VerifierMetrics.Verified].
func resultKind(err error) string {
	if err == nil {
		return "ok"
	}
	return ErrorKind(err)
}
