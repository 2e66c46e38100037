package op

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// FuzzAuthorizeParams: the cap and repetition checks of /authorize agree with
// their definitions on any query string.
func FuzzAuthorizeParams(f *testing.F) {
	for _, seed := range []string{
		"client_id=a&redirect_uri=https%3A%2F%2Fa.example%2Fcb&state=s&scope=openid",
		"state=a&state=b",
		"resource=https%3A%2F%2Fapi&resource=https%3A%2F%2Fother",
		"client_id=a&client_id=b&state=x&state=y",
		"nonce=" + string(make([]byte, 600)),
		"a=1;b=2&c",
		"%zz",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		form, err := url.ParseQuery(raw)
		if err != nil {
			return // /authorize answers a malformed query with an error page
		}
		rep := repeatedParam(form)
		folded := map[string]int{} // zitadel reads names case-insensitively
		for k, vs := range form {
			folded[strings.ToLower(k)] += len(vs)
		}
		var want []string
		for k, n := range folded {
			if n > 1 && !multiValued[k] && k != "" {
				want = append(want, k)
			}
		}
		switch {
		case rep == "" && len(want) > 0:
			t.Fatalf("repeated %v not reported", want)
		case rep != "" && (folded[rep] < 2 || multiValued[rep]):
			t.Fatalf("reported %q, which is not repeated", rep)
		case rep != "client_id" && rep != "redirect_uri" && (folded["client_id"] > 1 || folded["redirect_uri"] > 1):
			t.Fatalf("reported %q before client_id/redirect_uri", rep)
		}
		name, limit := oversizedParam(form)
		if name == "" {
			for k, vs := range form {
				for _, v := range vs {
					if l, ok := paramLimits[strings.ToLower(k)]; ok && len(v) > l {
						t.Fatalf("%s (%d bytes) over its cap %d not reported", k, len(v), l)
					}
				}
			}
			return
		}
		if paramLimits[strings.ToLower(name)] != limit {
			t.Fatalf("reported %s with cap %d, its cap is %d", name, limit, paramLimits[strings.ToLower(name)])
		}
		over := false
		for _, v := range form[name] {
			over = over || len(v) > limit
		}
		if !over {
			t.Fatalf("reported %s, which is within its cap", name)
		}
	})
}

// pendingStore answers GetAuthRequest only: no request was completed.
type pendingStore struct{ storage.Store }

func (pendingStore) GetAuthRequest(context.Context, string) (*storage.AuthRequest, error) {
	return nil, storage.ErrNotFound
}

// FuzzPendingRequest: a sealed request opens to exactly what was sealed, and
// nothing else opens at all.
func FuzzPendingRequest(f *testing.F) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var key [32]byte
	key[0] = 1
	sealer, err := newSealer(key, requestAD, maxHandle)
	if err != nil {
		f.Fatal(err)
	}
	p := &Provider{store: pendingStore{}, requests: sealer, cfg: Config{Now: func() time.Time { return now }}}
	f.Add("state", "nonce", "https://app.example/cb", "someone@example.com", "garbage")
	f.Add("", "", "", "", "")
	f.Add("\x00\xff", "🙂", "http://127.0.0.1:1/cb?x=1", "a", "eyJhbGciOi.x.y")
	f.Fuzz(func(t *testing.T, state, nonce, redirect, hint, garbage string) {
		ctx := context.Background()
		form := url.Values{"state": {state}, "nonce": {nonce}, "redirect_uri": {redirect}, "login_hint": {hint}}
		if badCharsParam(form) != "" {
			return // /authorize refuses these before sealing
		}
		if name, _ := oversizedParam(form); name != "" {
			return // and these
		}
		if _, err := p.PendingRequest(ctx, garbage); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("an arbitrary handle opened (err %v)", err)
		}
		maxAge := int64(len(state))
		ar := &storage.AuthRequest{
			ID: "id-" + nonce, ClientID: "client", RedirectURI: redirect, State: state, Nonce: nonce,
			Scopes: []string{"openid", state}, ResponseType: "code", ResponseMode: "query",
			Prompt: []string{"login"}, MaxAge: &maxAge, LoginHint: hint, HintSubject: nonce,
			Resources: []string{redirect}, CreatedAt: now, ExpiresAt: now.Add(time.Minute),
		}
		handle, err := p.sealRequest(ar)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.PendingRequest(ctx, handle)
		if err != nil {
			t.Fatalf("a sealed request does not open: %v", err)
		}
		if !reflect.DeepEqual(got, ar) {
			t.Fatalf("round trip changed the request:\n got %+v\nwant %+v", got, ar)
		}
		if len(handle) > 1 {
			tampered := handle[:len(handle)/2] + string(rune('A'+(handle[len(handle)/2]+1)%26)) + handle[len(handle)/2+1:]
			if tampered != handle {
				if _, err := p.PendingRequest(ctx, tampered); err == nil {
					t.Fatal("a tampered handle opened")
				}
			}
		}
	})
}
