package registration

import (
	"context"
	"errors"
	"fmt"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"net/http"
	"slices"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/storage"
)

// register is POST /oauth/register (RFC 7591 §3). The initial access
// token is checked before the metadata and used (one of its uses counted)
// only once the metadata is valid, so a rejected request costs none.
func (h *Handler) register(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ip := h.cfg.ClientIP(r)
	// Keyed by address, IPv6 by its /64 (one subscriber holds a whole one).
	if err := h.limit(ctx, h.cfg.PerIP, ratelimit.AddrKey(ip)); err != nil {
		return err
	}
	token, given := bearer(r)
	if given {
		if _, err := h.initialToken(ctx, token, false); err != nil {
			return err
		}
	} else if h.cfg.Mode == ModeToken {
		return invalidToken("an initial access token is required (Authorization: Bearer)")
	}
	m, err := decode(r)
	if err != nil {
		return err
	}
	spec, err := m.spec()
	if err != nil {
		return err
	}
	if _, err := spec.Client(h.cfg.Now()); err != nil {
		return adminError(err)
	}
	var tid string // the initial access token's ID; "" for none
	if given {
		t, err := h.initialToken(ctx, token, true)
		if err != nil {
			return err
		}
		tid = t.ID
	} else if err := openToAll(spec); err != nil {
		return err
	}
	actor := admin.Registration(tid)
	actor.IP, actor.UserAgent = ip, r.UserAgent()
	c, secret, err := h.cfg.Service.CreateClient(ctx, actor, spec)
	if err != nil {
		return adminError(err)
	}
	regToken := admin.NewRegistrationToken()
	reg := &storage.ClientRegistration{ClientID: c.ID, TokenHash: admin.HashRegistrationToken(regToken),
		InitialTokenID: tid, CreatedAt: h.cfg.Now().UTC()}
	if err := h.cfg.Store.SetClientRegistration(ctx, reg); err != nil {
		// Nobody could manage the client, nor knows it exists: take it back.
		if derr := h.cfg.Service.DeleteClient(context.WithoutCancel(ctx), actor, c.ID, ""); derr != nil {
			h.log.ErrorContext(ctx, "registered client without a registration left behind", "client_id", c.ID, "err", derr)
		}
		return fmt.Errorf("store registration of %s: %w", c.ID, err)
	}
	writeJSON(w, http.StatusCreated, h.information(c, secret, regToken))
	return nil
}

// initialToken finds the initial access token, using it when use is set.
// An unknown, expired or used-up token is invalid_token.
func (h *Handler) initialToken(ctx context.Context, token string, use bool) (*storage.RegistrationToken, error) {
	if token == "" {
		return nil, invalidToken("the initial access token is not valid")
	}
	hash, now := admin.HashRegistrationToken(token), h.cfg.Now()
	var t *storage.RegistrationToken
	var err error
	if use {
		t, err = h.cfg.Store.UseRegistrationToken(ctx, hash, now)
	} else {
		t, err = h.cfg.Store.GetRegistrationToken(ctx, hash, now)
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, invalidToken("the initial access token is not valid, has expired or is used up")
	case err != nil:
		return nil, fmt.Errorf("initial access token: %w", err)
	}
	return t, nil
}

// manage is RFC 7592: GET, PUT and DELETE of /oauth/register/{id} with the
// client's registration access token.
func (h *Handler) manage(w http.ResponseWriter, r *http.Request, id string) error {
	ctx := r.Context()
	if !slices.Contains([]string{http.MethodGet, http.MethodPut, http.MethodDelete}, r.Method) {
		return notAllowed(w, "GET, PUT, DELETE")
	}
	// Counted before the token is checked (so guessing is limited too), and
	// so per client and address: keyed by the client alone, anyone could
	// spend a client's budget with wrong tokens and lock its owner out.
	if err := h.limit(ctx, h.cfg.PerClient, id+"|"+ratelimit.AddrKey(h.cfg.ClientIP(r))); err != nil {
		return err
	}
	token, _ := bearer(r)
	reg, err := h.authorize(ctx, id, token)
	if err != nil {
		return err
	}
	// The client acts for itself.
	actor := admin.Actor{ClientID: id, IP: h.cfg.ClientIP(r), UserAgent: r.UserAgent()}
	switch r.Method {
	case http.MethodGet:
		c, err := h.cfg.Service.GetClient(ctx, actor, id)
		if err != nil {
			return h.gone(err)
		}
		writeJSON(w, http.StatusOK, h.information(c, "", token))
	case http.MethodPut:
		c, err := h.update(r, actor, reg)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, h.information(c, "", token))
	case http.MethodDelete:
		if err := h.cfg.Service.DeleteClient(ctx, actor, id, ""); err != nil {
			return h.gone(err)
		}
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

// authorize checks the registration access token of client id. An unknown
// client and a wrong token get the same answer, so the endpoint does not
// tell which clients exist.
func (h *Handler) authorize(ctx context.Context, id, token string) (*storage.ClientRegistration, error) {
	bad := invalidToken("the registration access token is not valid for this client")
	if token == "" {
		return nil, bad
	}
	reg, err := h.cfg.Store.GetClientRegistration(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, bad
	case err != nil:
		return nil, fmt.Errorf("client registration: %w", err)
	case !sameHash(reg.TokenHash, admin.HashRegistrationToken(token)):
		return nil, bad
	}
	return reg, nil
}

// gone answers a client deleted between the check of its token and the
// operation like a token that no longer fits.
func (h *Handler) gone(err error) error {
	if errors.Is(err, admin.ErrNotFound) {
		return invalidToken("the registration access token is not valid for this client")
	}
	return adminError(err)
}

// update replaces the client's metadata with the request's (RFC 7592 §2.2),
// by the rules of a registration. The kind of client (its application type
// and how it authenticates) stays: another kind is another client, to be
// registered anew.
func (h *Handler) update(r *http.Request, actor admin.Actor, reg *storage.ClientRegistration) (*admin.Client, error) {
	ctx, id := r.Context(), reg.ClientID
	m, err := decode(r)
	if err != nil {
		return nil, err
	}
	if m.ClientID != id {
		return nil, invalidMetadata("client_id must be this client's, %q", id)
	}
	cur, err := h.cfg.Store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, invalidToken("the registration access token is not valid for this client")
	} else if err != nil {
		return nil, fmt.Errorf("load client: %w", err)
	}
	if m.ClientSecret != "" && !sameHash(cur.SecretHash, admin.HashClientSecret(m.ClientSecret)) {
		return nil, invalidMetadata("client_secret is not this client's secret")
	}
	spec, err := m.spec()
	if err != nil {
		return nil, err
	}
	if spec.Type != cur.AppType || (spec.Public != (cur.AuthMethod == storage.AuthMethodNone)) {
		return nil, invalidMetadata("application_type and token_endpoint_auth_method cannot change; register a new client")
	}
	if reg.InitialTokenID == "" { // registered openly: it stays a loopback client
		if err := openToAll(spec); err != nil {
			return nil, err
		}
	}
	u := admin.ClientUpdate{
		Name: &spec.Name, RedirectURIs: &spec.RedirectURIs, PostLogoutRedirectURIs: &spec.PostLogoutRedirectURIs,
		GrantTypes: &spec.GrantTypes, AllowedScopes: &spec.AllowedScopes, BackchannelLogoutURI: &spec.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: &spec.BackchannelLogoutSessionRequired, IDTokenSigningAlg: &spec.IDTokenSigningAlg,
	}
	if !spec.Public {
		u.AuthMethod = &spec.AuthMethod
	}
	c, err := h.cfg.Service.UpdateClient(ctx, actor, id, u, "")
	if err != nil {
		return nil, h.gone(err)
	}
	return c, nil
}
