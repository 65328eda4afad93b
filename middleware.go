package asymjwt

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
)

// Middleware returns a handler that verifies each request and passes it on to
// next with the caller's [Identity] in its context (see [IdentityFrom]).
// A refused request gets 401 Unauthorized with a fixed short body and
// "WWW-Authenticate: JWT error=<kind>" (see [ErrorKind]); if the key or nonce
// store could not answer, 503 Service Unavailable with Retry-After. Both
// carry a Date header from the verifier's clock, from which a client can
// learn its clock skew. The reason goes to the logger ([WithLogger]) and the
// error hook, never to the client; [WithErrorBody] replaces the body. When
// the token binds the body, next reads a body that is checked as it is read
// (see [Verifier.Verify]): a handler that gets an error wrapping
// [ErrBinding] from it should answer with an error and not act on the body.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := v.Verify(r)
		if err != nil {
			v.refuse(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// refuse answers a request that did not verify.
func (v *Verifier) refuse(w http.ResponseWriter, r *http.Request, err error) {
	kind := ErrorKind(err)
	h := w.Header()
	status, contentType, body := http.StatusUnauthorized, "text/plain; charset=utf-8", []byte("unauthorized\n")
	level := slog.LevelInfo
	if errors.Is(err, ErrUnavailable) {
		status, body = http.StatusServiceUnavailable, []byte("cannot verify now\n")
		level = slog.LevelWarn
		h.Set("Retry-After", "1")
	}
	v.logRefusal(r, err, level)
	if v.errorBody != nil {
		contentType, body = v.errorBody(r, err)
	}
	h.Set("WWW-Authenticate", `JWT error="`+kind+`"`)
	if v.issuers != nil {
		h.Add("WWW-Authenticate", bearerChallenge(r, err))
	}
	h.Set("Date", v.now().UTC().Format(http.TimeFormat))
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// logRefusal writes a refusal's line to the logger, if any.
func (v *Verifier) logRefusal(r *http.Request, err error, level slog.Level) {
	if v.logger != nil {
		v.logger.LogAttrs(r.Context(), level, "asymjwt: request refused", certLogAttrs(err, []slog.Attr{
			slog.String("kind", ErrorKind(err)), slog.String("error", reasonOf(err)),
			slog.String("method", r.Method), slog.String("path", r.URL.Path)})...)
	}
}

// reportRefusal reports a refusal that happens after Verify, as a body that
// does not match its digest: to the metrics, the error hook and the logger.
func (v *Verifier) reportRefusal(r *http.Request, err error) {
	if v.bodyMetrics != nil {
		v.bodyMetrics.BodyRefused(ErrorKind(err))
	}
	if v.onError != nil {
		v.onError(r, err)
	}
	v.logRefusal(r, err, slog.LevelInfo)
}

// logAccepted logs an accepted request: at Info when a certificate vouched
// for the key (its key ID, serial and CA are the audit trail sshd keeps
// too), at Debug otherwise.
func (v *Verifier) logAccepted(r *http.Request, id *Identity) {
	if v.logger == nil {
		return
	}
	level := slog.LevelDebug
	if id.Certificate != nil {
		level = slog.LevelInfo
	}
	if !v.logger.Enabled(r.Context(), level) {
		return
	}
	v.logger.LogAttrs(r.Context(), level, "asymjwt: request accepted", id.logAttrs([]slog.Attr{
		slog.String("method", r.Method), slog.String("path", r.URL.Path)})...)
}

// ErrorKind returns the short name of a verification error, as sent in
// "WWW-Authenticate: JWT error=<kind>": "no_token", "too_large",
// "malformed", "bad_header", "bad_algorithm", "bad_claims",
// "invalid_signature" (also for an unknown user, for a token whose
// algorithm fits none of the user's keys, and for a certificate from a CA
// not trusted for the user, so usernames cannot be probed), "stale",
// "replay", "binding", "unavailable", "key_expired", "address", "revoked",
// "cert_type", "cert_principal", "cert_expired", "cert_option";
// "invalid_token" for any other error.
func ErrorKind(err error) string {
	var wk wireKindError
	if errors.As(err, &wk) {
		return wk.kind
	}
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return "invalid_token"
}

// kindSentinel returns the sentinel of a wire error kind.
func kindSentinel(kind string) (error, bool) {
	for _, k := range errorKinds {
		if k.kind == kind {
			return k.err, true
		}
	}
	return nil, false
}

var errorKinds = [...]struct {
	err  error
	kind string
}{
	{ErrUnavailable, "unavailable"},
	{ErrNoToken, "no_token"},
	{ErrTokenTooLarge, "too_large"},
	{ErrMalformed, "malformed"},
	{ErrBadHeader, "bad_header"},
	{ErrBadAlgorithm, "bad_algorithm"},
	{ErrBadClaims, "bad_claims"},
	{ErrBadSignature, "invalid_signature"},
	{ErrUnknownUser, "invalid_signature"},
	{ErrStale, "stale"},
	{ErrReplay, "replay"},
	{ErrBinding, "binding"},
	{ErrKeyExpired, "key_expired"},
	{ErrAddressRefused, "address"},
	{ErrRevoked, "revoked"},
	{ErrCertUntrusted, "invalid_signature"},
	{ErrCertType, "cert_type"},
	{ErrCertPrincipal, "cert_principal"},
	{ErrCertExpired, "cert_expired"},
	{ErrCertOption, "cert_option"},
}

// wireKindError reports another kind to the client than its sentinel would,
// where the true one would leak something.
type wireKindError struct {
	error
	kind string
}

func (e wireKindError) Unwrap() error { return e.error }

type identityKey struct{}

// IdentityFrom returns the identity [Verifier.Middleware] put in a request's
// context, and whether there is one.
func IdentityFrom(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok && id != nil
}
