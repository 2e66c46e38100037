package op

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// A pending authorization request costs no storage. /authorize validates it
// and seals it (AES-256-GCM under a key derived from GATEHOUSE_SECRET, with
// its expiry inside) into the handle that the sign-in pages carry in their
// URLs and forms; the browser-binding cookie (binding.go) ties the request's
// ID to the browser that started it. The request is stored only when the
// user has signed in for it (Complete), so a flood of /authorize costs CPU,
// never disk, and each sign-in does one database write fewer. The handle is
// opaque and unforgeable; a client learns nothing from it that it did not
// send.

// maxHandle bounds a sealed request: the authorize parameters are capped
// (maxAuthorizeQuery), so a genuine handle is well below this.
const maxHandle = 32 << 10

// requestAD separates sealed requests from any other ciphertext.
var requestAD = []byte("gatehouse/op/auth-request/v1")

// sealedRequest is what a handle carries (short keys keep URLs short).
type sealedRequest struct {
	ID            string   `json:"i"`
	ClientID      string   `json:"c"`
	RedirectURI   string   `json:"r"`
	State         string   `json:"s,omitempty"`
	Nonce         string   `json:"n,omitempty"`
	Scopes        []string `json:"sc,omitempty"`
	ResponseMode  string   `json:"rm,omitempty"`
	CodeChallenge string   `json:"cc,omitempty"`
	Prompt        []string `json:"p,omitempty"`
	MaxAge        *int64   `json:"ma,omitempty"`
	LoginHint     string   `json:"lh,omitempty"`
	HintSubject   string   `json:"hs,omitempty"`
	Resources     []string `json:"rs,omitempty"`
	ACRValues     []string `json:"acr,omitempty"`
	DPoPJKT       string   `json:"dj,omitempty"`
	CreatedAt     int64    `json:"t"` // Unix milliseconds
	ExpiresAt     int64    `json:"e"`
}

// errNoPendingRequest: the handle is malformed, forged or expired.
var errNoPendingRequest = fmt.Errorf("op: unknown or expired authorization request: %w", storage.ErrNotFound)

func (p *Provider) sealRequest(ar *storage.AuthRequest) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // <, > and & cost 6 bytes each escaped; the JSON is never HTML
	err := enc.Encode(sealedRequest{
		ID: ar.ID, ClientID: ar.ClientID, RedirectURI: ar.RedirectURI, State: ar.State, Nonce: ar.Nonce,
		Scopes: ar.Scopes, ResponseMode: ar.ResponseMode, CodeChallenge: ar.CodeChallenge,
		Prompt: ar.Prompt, MaxAge: ar.MaxAge, LoginHint: ar.LoginHint, HintSubject: ar.HintSubject,
		Resources: ar.Resources, ACRValues: ar.ACRValues, CreatedAt: ar.CreatedAt.UnixMilli(), ExpiresAt: ar.ExpiresAt.UnixMilli(),
		DPoPJKT: ar.DPoPJKT,
	})
	if err != nil {
		return "", fmt.Errorf("seal auth request: %w", err)
	}
	return p.requests.Encrypt(buf.String())
}

// PendingRequest implements login.Flow: it opens the handle /authorize put
// in the sign-in URL. A malformed, forged, expired or completed handle is
// storage.ErrNotFound.
func (p *Provider) PendingRequest(ctx context.Context, handle string) (*storage.AuthRequest, error) {
	plain, err := p.requests.Decrypt(handle)
	if err != nil {
		return nil, errNoPendingRequest
	}
	var s sealedRequest
	if err := json.Unmarshal([]byte(plain), &s); err != nil || s.ID == "" {
		return nil, errNoPendingRequest
	}
	ar := &storage.AuthRequest{
		ID: s.ID, ClientID: s.ClientID, RedirectURI: s.RedirectURI, State: s.State, Nonce: s.Nonce,
		Scopes: s.Scopes, ResponseType: "code", ResponseMode: s.ResponseMode, CodeChallenge: s.CodeChallenge,
		Prompt: s.Prompt, MaxAge: s.MaxAge, LoginHint: s.LoginHint, HintSubject: s.HintSubject,
		Resources: s.Resources, ACRValues: s.ACRValues, CreatedAt: time.UnixMilli(s.CreatedAt).UTC(), ExpiresAt: time.UnixMilli(s.ExpiresAt).UTC(),
		DPoPJKT: s.DPoPJKT,
	}
	if ar.CodeChallenge != "" {
		ar.CodeChallengeMethod = "S256" // the only method /authorize accepts
	}
	if !p.now().Before(ar.ExpiresAt) {
		return nil, errNoPendingRequest
	}
	// A completed request is stored; its handle is spent (the back button,
	// a second tab) and the pages say so rather than offer a sign-in that
	// could only fail.
	switch _, err := p.store.GetAuthRequest(ctx, ar.ID); {
	case err == nil:
		return nil, errNoPendingRequest
	case !errors.Is(err, storage.ErrNotFound):
		return nil, fmt.Errorf("check auth request: %w", err)
	}
	return ar, nil
}
