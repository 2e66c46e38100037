package op

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeAccessToken: the decoder never panics; what it accepts is a
// complete token, and re-encoding it is a fixed point (encode → decode gives
// the same token back, and encoding that again gives the same string).
func FuzzDecodeAccessToken(f *testing.F) {
	valid := (&accessToken{ID: "id", GrantID: "g", ClientID: "app", IssuedAt: 1, Expiry: 2, Scopes: []string{"openid", "email"}}).encode()
	for _, s := range []string{
		valid,
		(&accessToken{ID: "x", ClientID: "c", Expiry: -1}).encode(), // client_credentials: no grant, no scopes
		"",
		"e30",                  // {}
		"bnVsbA",               // null
		"W10",                  // []
		valid + "=",            // padded: not RawURLEncoding
		strings.ToUpper(valid), // wrong alphabet case
		"%%%",                  // not base64
		b64json(`{"j":"a","c":"b","e":1,"j":"c"}`),                // duplicate key: last wins
		b64json(`{"J":"a","C":"b","E":1}`),                        // keys match case-insensitively
		b64json(`{"j":"a","c":"b","e":1,"x":[1,2,{"y":null}]}`),   // unknown field
		b64json(`{"j":"a","c":"b","e":1e3}`),                      // float where an int goes
		b64json(`{"j":"a","c":"b","e":99999999999999999999}`),     // overflows int64
		b64json(`{"j":"\ud800","c":"b","e":1}`),                   // lone surrogate
		b64json("{\"j\":\"\xff\",\"c\":\"b\",\"e\":1}"),           // invalid UTF-8
		b64json(`{"j":"a","c":"b","e":1,"s":["openid",null,""]}`), // null scope
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := decodeAccessToken(s)
		if err != nil {
			if tok != nil {
				t.Fatalf("error %v with a token %+v", err, tok)
			}
			return
		}
		if tok.ID == "" || tok.ClientID == "" || tok.Expiry == 0 {
			t.Fatalf("accepted an incomplete token %+v", tok)
		}
		enc := tok.encode()
		again, err := decodeAccessToken(enc)
		if err != nil {
			t.Fatalf("re-encoded token %q does not decode: %v", enc, err)
		}
		if !reflect.DeepEqual(normScopes(again), normScopes(tok)) {
			t.Fatalf("re-encode changed the token:\n %+v\n %+v", tok, again)
		}
		if again.encode() != enc {
			t.Fatalf("encoding is not a fixed point: %q then %q", enc, again.encode())
		}
	})
}

// FuzzAccessTokenRoundTrip: decode(encode(t)) == t for every complete token
// whose strings are valid UTF-8 (JSON cannot carry other bytes; every field
// Gatehouse puts in is ASCII: random IDs, checked client IDs, standard scopes).
func FuzzAccessTokenRoundTrip(f *testing.F) {
	f.Add("tokid", "grant", "app", int64(1700000000), int64(1700003600), "openid email")
	f.Add("tokid", "", "svc", int64(0), int64(-1), "")
	f.Add("\"quoted\\", "<g>&", "c\u2028", int64(-1<<63), int64(1<<63-1), "a  b\x00")
	f.Fuzz(func(t *testing.T, id, grant, clientID string, iat, exp int64, scopes string) {
		for _, s := range []string{id, grant, clientID, scopes} {
			if !utf8.ValidString(s) {
				return
			}
		}
		in := &accessToken{ID: id, GrantID: grant, ClientID: clientID, IssuedAt: iat, Expiry: exp, Scopes: strings.Split(scopes, " ")}
		enc := in.encode()
		if _, err := base64.RawURLEncoding.Strict().DecodeString(enc); err != nil {
			t.Fatalf("encode gave non-canonical base64url %q: %v", enc, err)
		}
		out, err := decodeAccessToken(enc)
		if id == "" || clientID == "" || exp == 0 {
			if err == nil {
				t.Fatalf("incomplete token %+v decoded", in)
			}
			return
		}
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", in, err)
		}
		if !reflect.DeepEqual(normScopes(out), normScopes(in)) {
			t.Fatalf("round trip changed the token:\n %+v\n %+v", in, out)
		}
	})
}

func b64json(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// normScopes treats no scopes and an empty list alike (omitempty).
func normScopes(t *accessToken) accessToken {
	c := *t
	if len(c.Scopes) == 0 {
		c.Scopes = nil
	}
	return c
}
