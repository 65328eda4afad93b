package asymjwt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a [RemoteKeySet].
const (
	// DefaultRefreshInterval is the least time between two fetches of a
	// JWK set caused by unknown "kid"s.
	DefaultRefreshInterval = time.Minute
	// DefaultMaxKeyAge is how long fetched keys are used before the set is
	// fetched again, so a key the issuer withdrew stops verifying.
	DefaultMaxKeyAge = time.Hour
	// MaxJWKSSize is the largest JWK set document read, in bytes.
	MaxJWKSSize = 64 << 10
	// jwksTimeout bounds one fetch, whatever the HTTP client.
	jwksTimeout = 10 * time.Second
)

// RemoteKeySet is the key set of an issuer fetched from its JWKS URL (its
// jwks_uri). Keys are fetched on first use and cached. A token whose "kid"
// is not in the cache causes a fetch, at most one per refresh interval
// ([WithRefreshInterval]) however many such tokens come, so a flood of
// made-up kids cannot turn into a flood of fetches, while the first token
// of a newly rotated key finds it at once. Keys older than the maximum age
// ([WithMaxKeyAge]) are fetched again before use, so a key the issuer
// withdrew stops verifying. A fetch is bounded in time (10 s, or the
// caller's earlier deadline) and size ([MaxJWKSSize]); one that fails
// leaves a fresh cache in use, but verification fails closed
// ([ErrUnavailable]) when there are no keys younger than the maximum age,
// and the next attempt waits for the interval. It is safe for concurrent
// use by multiple goroutines.
type RemoteKeySet struct {
	issuer      string
	url         string
	client      *http.Client
	now         func() time.Time
	minInterval time.Duration
	maxAge      time.Duration

	cur atomic.Pointer[fetchedKeys]

	mu          sync.Mutex // one fetch at a time
	lastAttempt time.Time  // the last fetch
	lastErr     error      // its error
	lastUnknown time.Time  // the last fetch for an unknown kid
}

type fetchedKeys struct {
	set *KeySet
	at  time.Time
}

// WithHTTPClient sets the client a [RemoteKeySet] fetches with; the
// default has a 10 s timeout, takes no proxy from the environment, and
// follows at most three redirects, to https only. c must not be nil.
func WithHTTPClient(c *http.Client) RemoteKeySetOption {
	return remoteKeySetOptionFunc(func(s *RemoteKeySet) error {
		if c == nil {
			return optionError("WithHTTPClient", "nil client")
		}
		s.client = c
		return nil
	})
}

// WithRefreshInterval sets the least time between two fetches of a
// [RemoteKeySet] caused by unknown kids; the default is
// [DefaultRefreshInterval]. d must be positive.
func WithRefreshInterval(d time.Duration) RemoteKeySetOption {
	return remoteKeySetOptionFunc(func(s *RemoteKeySet) error {
		if d <= 0 {
			return optionError("WithRefreshInterval", fmt.Sprintf("%v is not positive", d))
		}
		s.minInterval = d
		return nil
	})
}

// WithMaxKeyAge sets how long a [RemoteKeySet] uses fetched keys before
// fetching them again; the default is [DefaultMaxKeyAge]. It must be
// positive and at least the refresh interval.
func WithMaxKeyAge(d time.Duration) RemoteKeySetOption {
	return remoteKeySetOptionFunc(func(s *RemoteKeySet) error {
		if d <= 0 {
			return optionError("WithMaxKeyAge", fmt.Sprintf("%v is not positive", d))
		}
		s.maxAge = d
		return nil
	})
}

// NewRemoteKeySet returns the key set of issuer, fetched from jwksURL, an
// absolute https URL (http only for a loopback host). Nothing is fetched
// until a token needs a key.
func NewRemoteKeySet(issuer, jwksURL string, opts ...RemoteKeySetOption) (*RemoteKeySet, error) {
	if !validIssuer(issuer) {
		return nil, errorf("NewRemoteKeySet: %w: issuer %q", ErrInvalidOption, truncate(issuer))
	}
	u, err := url.Parse(jwksURL)
	if err != nil || u.Host == "" || !(u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return nil, errorf("NewRemoteKeySet: %w: JWKS URL %q is not an absolute https URL (http only on loopback)", ErrInvalidOption, truncate(jwksURL))
	}
	s := &RemoteKeySet{
		issuer:      issuer,
		url:         jwksURL,
		client:      &http.Client{Timeout: jwksTimeout, Transport: &http.Transport{}, CheckRedirect: jwksRedirect},
		now:         time.Now,
		minInterval: DefaultRefreshInterval,
		maxAge:      DefaultMaxKeyAge,
	}
	for _, opt := range opts {
		if err := opt.applyRemoteKeySet(s); err != nil {
			return nil, err
		}
	}
	if s.maxAge < s.minInterval {
		return nil, optionError("WithMaxKeyAge", fmt.Sprintf("%v is shorter than the refresh interval %v", s.maxAge, s.minInterval))
	}
	return s, nil
}

// jwksRedirect lets the default client follow at most three redirects,
// each to https (or to loopback): keys fetched over plain HTTP could be
// anyone's.
func jwksRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("stopped after 3 redirects")
	}
	if req.URL.Scheme != "https" && !(req.URL.Scheme == "http" && isLoopback(req.URL.Hostname())) {
		return fmt.Errorf("redirect to %s://%s refused: not https", req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// isLoopback reports whether host names the loopback interface.
func isLoopback(host string) bool {
	switch host {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// Issuer returns the issuer identifier.
func (s *RemoteKeySet) Issuer() string { return s.issuer }

// IssuerKey returns the key whose kid is kid, fetching the set when the
// cache is empty or too old, or has no such key and the refresh interval
// has passed since the last fetch.
func (s *RemoteKeySet) IssuerKey(ctx context.Context, kid string) (IssuerKey, bool, error) {
	if f := s.cur.Load(); f != nil && s.now().Sub(f.at) < s.maxAge {
		if k, ok := f.set.find(kid); ok {
			return k, true, nil
		}
	}
	return s.refresh(ctx, kid)
}

// refresh fetches the set if it may, and looks kid up in what it has.
func (s *RemoteKeySet) refresh(ctx context.Context, kid string) (IssuerKey, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	f := s.cur.Load()
	if f != nil && now.Sub(f.at) < s.maxAge {
		// Another caller may have fetched while this one waited.
		if k, ok := f.set.find(kid); ok {
			return k, true, nil
		}
		// An unknown kid: one fetch per interval, whatever the kids.
		if !s.lastUnknown.IsZero() && now.Sub(s.lastUnknown) < s.minInterval {
			return IssuerKey{}, false, nil
		}
		s.lastUnknown = now
	} else if s.lastErr != nil && now.Sub(s.lastAttempt) < s.minInterval {
		// No usable keys, and the last fetch failed: do not hammer the
		// issuer; fail closed until the interval has passed.
		return IssuerKey{}, false, fmt.Errorf("no keys of issuer %q younger than %v; next fetch in %v (last fetch: %w)",
			truncate(s.issuer), s.maxAge, s.minInterval-now.Sub(s.lastAttempt), s.lastErr)
	}
	s.lastAttempt = now
	set, err := s.fetch(ctx)
	s.lastErr = err
	if err != nil {
		return IssuerKey{}, false, err
	}
	s.cur.Store(&fetchedKeys{set: set, at: now})
	k, ok := set.find(kid)
	return k, ok, nil
}

// fetch gets and parses the JWK set.
func (s *RemoteKeySet) fetch(ctx context.Context) (*KeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", s.url, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: %s", s.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", s.url, err)
	}
	if len(body) > MaxJWKSSize {
		return nil, fmt.Errorf("fetching %s: JWK set larger than %d bytes", s.url, MaxJWKSSize)
	}
	set, errs := ParseKeySet(s.issuer, body)
	if set == nil || len(set.keys) == 0 {
		why := "no keys"
		if len(errs) > 0 {
			why = reasonOf(errs[0])
		}
		return nil, fmt.Errorf("fetching %s: %w: no usable key (%s)", s.url, ErrKeyFormat, why)
	}
	return set, nil
}
