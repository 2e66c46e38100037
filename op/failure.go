package op

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/internal/requestid"
	"github.com/gatehouse-id/gatehouse/storage"
)

// A failure of Gatehouse or of a dependency is never the client's fault: it is
// answered 500 server_error, or 503 temporarily_unavailable with Retry-After
// when the store could not answer, and never as invalid_grant, invalid_client
// or invalid_request. Strict relying parties (oauth4webapi, Auth.js) treat
// invalid_grant as final and sign the user out of the app; a 5xx they retry.
// The response says only that it failed and names the request ID; the detail
// goes to the log under the same ID.

// retryAfterSeconds is what a 503 asks clients to wait.
const retryAfterSeconds = 2

// publicError passes verdicts on the request through (an *oidc.Error other
// than server_error, with no store failure behind it) and turns everything
// else into a logged, generic 500/503 for zitadel's error writer.
func (p *Provider) publicError(ctx context.Context, what string, err error) error {
	var oe *oidc.Error
	if errors.As(err, &oe) && oe.ErrorType != oidc.ServerError && !errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	status, e := p.failure(ctx, what, err)
	return zop.NewStatusError(e, status)
}

// failure logs err (unless the client went away) and returns the status and
// the generic error a client may see.
func (p *Provider) failure(ctx context.Context, what string, err error) (int, *oidc.Error) {
	id := requestid.From(ctx)
	if id == "" { // served without cmd's middleware (tests): still quotable
		id = requestid.New()
		ctx = requestid.With(ctx, id)
	}
	if ctx.Err() == nil {
		p.log.ErrorContext(ctx, what, "err", err)
	}
	if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		e := oidc.ErrServerError().WithDescription("the service is temporarily unavailable, please retry (request %s)", id)
		e.ErrorType = "temporarily_unavailable" // RFC 6749 §4.1.2.1's code for this
		return http.StatusServiceUnavailable, e
	}
	return http.StatusInternalServerError, oidc.ErrServerError().WithDescription("internal error (request %s)", id)
}

// writeFailure writes a failure as an OAuth JSON error (userinfo,
// introspection, readiness).
func (p *Provider) writeFailure(w http.ResponseWriter, r *http.Request, what string, err error) {
	status, e := p.failure(r.Context(), what, err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	writeJSON(w, status, oauthError{string(e.ErrorType), e.Description})
}

// ready serves /readyz (and /ready, its older name): 200 when the store
// answers and signing keys are loaded, 503 otherwise. The body says which
// check failed, never how (no host, user or database name): the detail is in
// the log under the request ID.
func (p *Provider) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	status := func(code int, state, check string) {
		body := map[string]string{"status": state}
		if check != "" {
			body["failed"] = check
			body["request_id"] = requestid.From(r.Context())
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		}
		writeJSON(w, code, body)
	}
	if err := p.store.Ping(ctx); err != nil {
		if r.Context().Err() == nil {
			p.log.WarnContext(r.Context(), "not ready: store", "err", err)
		}
		status(http.StatusServiceUnavailable, "unavailable", "store")
		return
	}
	if p.keys.Active().Signer == nil {
		p.log.WarnContext(r.Context(), "not ready: no signing key loaded")
		status(http.StatusServiceUnavailable, "unavailable", "keys")
		return
	}
	status(http.StatusOK, "ok", "")
}

// readyTimeout bounds the store check, so a hung database makes /readyz
// answer 503 within a load balancer's probe timeout instead of hanging.
const readyTimeout = 2 * time.Second

// failurePage shows a person an internal failure: 503 (with Retry-After)
// when the store could not answer, else 500, naming the request ID only.
func (p *Provider) failurePage(w http.ResponseWriter, r *http.Request, what string, err error) {
	status, _ := p.failure(r.Context(), what, err)
	msg := "Something went wrong on our side. Please try again."
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		msg = "The service is briefly unavailable. Please try again in a moment."
	}
	if id := requestid.From(r.Context()); id != "" {
		msg += " (Reference: " + id + ")"
	}
	p.errorPage(w, r, status, msg, "")
}
