package backchannel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds one delivery (connect, TLS, request, answer) when
// NewHTTPClient is given none. The spec expects receivers to answer at once;
// a slow one is retried later rather than holding a worker.
const DefaultTimeout = 5 * time.Second

// MaxResponseBytes is how much of an answer's body is read. The body means
// nothing (the status decides); the little that is read lets a well-behaved
// receiver's connection be reused, and a receiver streaming an endless body
// costs Gatehouse no more than this.
const MaxResponseBytes = 4 << 10

// maxHeaderBytes bounds the answer's headers, which Go would otherwise read
// up to 1 MiB of.
const maxHeaderBytes = 16 << 10

// userAgent names Gatehouse to receivers, whose logs then say what called.
const userAgent = "Gatehouse-Backchannel-Logout/1"

// NewHTTPClient returns the client for posting Logout Tokens: every request
// ends within timeout (0 or less means DefaultTimeout), redirects are never
// followed (the 3xx answer is returned as is, and Classify gives it up: the
// URI was fixed at registration, and following a redirect would let a
// receiver point Gatehouse at any host, including internal ones), and
// answer headers are bounded. Send bounds the body.
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// Half the budget to connect: an address that drops packets shows in
	// the dial, and the rest of the budget is for a receiver that answers.
	dialer := &net.Dialer{Timeout: timeout / 2, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DialContext:            dialer.DialContext,
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: maxHeaderBytes,
			ForceAttemptHTTP2:      true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Outcome is what becomes of a delivery after an attempt.
type Outcome int

const (
	// Delivered: the receiver answered 2xx; the delivery is done.
	Delivered Outcome = iota + 1
	// Retry: the receiver may accept it later (5xx, 408, 429, a network
	// error or a timeout).
	Retry
	// GiveUp: the receiver refused it (4xx, 3xx) and asking again would be
	// refused again, or the delivery ran out of time.
	GiveUp
)

// String returns "delivered", "retry" or "given_up", suitable as a metric
// label or log value.
func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case GiveUp:
		return "given_up"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is the result of one attempt.
type Result struct {
	Outcome Outcome
	// Status is the HTTP status of the answer, 0 when there was none.
	Status int
	// Err says why the attempt failed (nil when Delivered). It never
	// contains the token.
	Err error
}

// Classify decides the Outcome of an attempt from the answer's status, or
// from err when no answer came (err non-nil: always Retry, since a network
// failure or timeout says nothing about the token).
//
// 2xx is Delivered (the spec says 200; any success will do). 408 and 429
// are the receiver asking for another try, and 5xx a receiver in trouble:
// Retry. Any other 4xx is the receiver rejecting the token (the spec's 400
// for a logout that failed, or an unknown endpoint): GiveUp, because the
// same token would be rejected again. A 3xx is GiveUp too: redirects are
// not followed, and the registered URI will keep redirecting. Anything else
// (a status outside 200–599) is not an answer the spec knows: GiveUp.
func Classify(status int, err error) Outcome {
	switch {
	case err != nil:
		return Retry
	case status >= 200 && status < 300:
		return Delivered
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return Retry
	case status >= 500 && status < 600:
		return Retry
	default:
		return GiveUp
	}
}

// Send posts token to uri as the spec's application/x-www-form-urlencoded
// logout_token parameter (§2.5) with client, reads at most
// MaxResponseBytes of the answer, and classifies the attempt. client should
// come from NewHTTPClient; ctx can end the attempt early.
func Send(ctx context.Context, client *http.Client, uri, token string) Result {
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(body))
	if err != nil {
		// Only a URI that ValidateURI would have refused gets here; no
		// later attempt can succeed.
		return Result{Outcome: GiveUp, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		// The error never contains the body (the token). *url.Error adds
		// the whole URI, whose query may hold something the receiver
		// treats as a secret; the error text goes to logs and the outbox,
		// which name the client instead.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return Result{Outcome: Retry, Err: err}
	}
	// The body means nothing; read a bounded amount so a short answer's
	// connection can be reused, then close, which drops the connection if
	// more was coming.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBytes))
	_ = resp.Body.Close()
	r := Result{Outcome: Classify(resp.StatusCode, nil), Status: resp.StatusCode}
	if r.Outcome != Delivered {
		r.Err = fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	return r
}
