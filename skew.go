package asymjwt

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Clock-skew correction, in the manner of the AWS SDKs: a server that
// refuses a token as stale says its time in the Date header, and the client
// signs later tokens for that server with its own clock moved by the
// difference.

// Limits on what a Date header can teach.
const (
	maxSkewRoundTrip = 5 * time.Second // longest exchange whose Date is placed
	maxLearnedSkew   = 5 * time.Minute // largest offset followed
)

// clockSkew holds the clock offset learned for each host (by canonical
// host); the zero value has none. It is safe for concurrent use.
type clockSkew struct {
	m       sync.Map    // string -> time.Duration
	learned atomic.Bool // set before the first Store to m
}

// requestOffset is the offset learned for req's host. Most clients never
// learn one: until then it skips canonicalising the host and the lookup.
func (c *clockSkew) requestOffset(req *http.Request) time.Duration {
	if !c.learned.Load() {
		return 0
	}
	return c.offset(skewKey(req))
}

func (c *clockSkew) offset(host string) time.Duration {
	if d, ok := c.m.Load(host); ok {
		return d.(time.Duration)
	}
	return 0
}

// learn reads host's clock from resp, a stale refusal of a token signed at
// ours moved by signedWith, and reports whether the offset it teaches
// differs from signedWith enough that a resend with it can pass; it then
// records it. Comparing with the offset the refused token carried, not with
// the one recorded now, lets every one of many concurrent first requests to
// a skewed host learn the same offset and resend once.
func (c *clockSkew) learn(host string, signedWith time.Duration, ours time.Time, resp *http.Response, elapsed time.Duration) bool {
	if elapsed > maxSkewRoundTrip {
		return false
	}
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return false
	}
	// The server wrote Date about halfway through the exchange, truncated
	// to the second.
	ours = ours.Add(-elapsed / 2)
	offset := date.Add(500 * time.Millisecond).Sub(ours).Round(time.Second)
	if offset > maxLearnedSkew || offset < -maxLearnedSkew {
		return false
	}
	if d := offset - signedWith; d > -time.Second && d < time.Second {
		return false // not a clock problem this can fix
	}
	c.learned.Store(true)
	c.m.Store(host, offset)
	return true
}

func skewKey(req *http.Request) string { return canonicalHost(req.URL.Scheme, requestHost(req)) }

// isStale reports whether resp refuses a token as stale.
func isStale(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		scheme, params, _ := strings.Cut(v, " ")
		if strings.EqualFold(scheme, "JWT") && strings.Contains(params, `error="stale"`) {
			return true
		}
	}
	return false
}
