package storagetest

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// t0 is the suite's "now". Its sub-millisecond digits are deliberate: backends
// may drop them, and every comparison must still hold.
func t0() time.Time { return time.Date(2031, time.March, 4, 5, 6, 7, 891_234_567, time.UTC) }

// at is t0 shifted by d.
func at(d time.Duration) time.Time { return t0().Add(d) }

// hash is the SHA-256 of s, standing in for a hashed secret.
func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func newUser(id, email string) *storage.User {
	return &storage.User{
		ID:            id,
		Email:         email,
		Name:          "Name of " + id,
		Role:          "member",
		EmailVerified: true,
		PasswordHash:  "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		CreatedAt:     at(-time.Hour),
		UpdatedAt:     at(-time.Minute),
	}
}

func newClient(id string) *storage.Client {
	return &storage.Client{
		ID:                     id,
		Name:                   "Client " + id,
		SecretHash:             hash("secret of " + id),
		RedirectURIs:           []string{"https://" + id + ".example/cb", "https://" + id + ".example/cb2"},
		PostLogoutRedirectURIs: []string{"https://" + id + ".example/bye"},
		AppType:                storage.AppTypeWeb,
		AuthMethod:             storage.AuthMethodBasic,
		GrantTypes:             []string{"authorization_code", "refresh_token"},
		AccessTokenFormat:      storage.AccessTokenJWT,
		RequireConsent:         true,
		RequireMFA:             true,
		Resources:              []string{"https://api." + id + ".example/", "https://files.example/v1"},
		AllowedScopes:          []string{storage.ScopeAdmin, "reports:read"},
		BackchannelLogoutURI:   "https://" + id + ".example/backchannel-logout",
		// Both flags on, so a backend that drops one fails the round trip.
		BackchannelLogoutSessionRequired: true,
		OfflineSurvivesLogout:            true,
		CreatedAt:                        at(-2 * time.Hour),
		RequirePAR:                       true, // on, so a backend that drops it fails the round trip
		UpdatedAt:                        at(-time.Hour),
		IDTokenSignedResponseAlg:         "EdDSA",
	}
}

func newAuthRequest(id, clientID string) *storage.AuthRequest {
	maxAge := int64(3600)
	return &storage.AuthRequest{
		ID:                  id,
		ClientID:            clientID,
		RedirectURI:         "https://" + clientID + ".example/cb",
		State:               "state-" + id,
		Nonce:               "nonce-" + id,
		Scopes:              []string{"openid", "email", "offline_access"},
		ResponseType:        "code",
		ResponseMode:        "query",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		Prompt:              []string{"login", "consent"},
		MaxAge:              &maxAge,
		LoginHint:           "someone@example.com",
		HintSubject:         "subject-1",
		Resources:           []string{"https://api." + clientID + ".example/", "https://files.example/v1"},
		CreatedAt:           t0(),
		ExpiresAt:           at(10 * time.Minute),
	}
}

func newGrant(id, userID, clientID, sessionID string) *storage.Grant {
	return &storage.Grant{
		ID:        id,
		UserID:    userID,
		ClientID:  clientID,
		SessionID: sessionID,
		Scopes:    []string{"openid", "offline_access"},
		Resources: []string{"https://api." + clientID + ".example/"},
		AuthTime:  at(-time.Minute),
		AMR:       []string{"pwd"},
		IDP:       "corp",
		CreatedAt: t0(),
		ExpiresAt: at(30 * 24 * time.Hour),
	}
}

func newRefreshToken(secret, grantID string) *storage.RefreshToken {
	return &storage.RefreshToken{
		Hash:      hash(secret),
		GrantID:   grantID,
		Scopes:    []string{"openid", "offline_access"},
		CreatedAt: t0(),
		ExpiresAt: at(24 * time.Hour),
	}
}

func newSession(id, userID string) *storage.Session {
	return &storage.Session{
		ID:            id,
		TokenHash:     hash("cookie of " + id),
		UserID:        userID,
		AuthTime:      at(-time.Minute),
		AMR:           []string{"pwd", "otp"},
		CreatedAt:     at(-time.Minute),
		LastSeenAt:    t0(),
		ExpiresAt:     at(24 * time.Hour),
		IdleExpiresAt: at(time.Hour),
		IDP:           "corp",
		UserAgent:     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15 " + id,
		IP:            "2001:db8::7",
	}
}

func newSigningKey(id, state string) *storage.SigningKey {
	k := &storage.SigningKey{
		ID:         id,
		Algorithm:  "ES256",
		State:      state,
		PrivateKey: []byte("sealed private key " + id),
		PublicKey:  []byte("public key " + id),
		CreatedAt:  at(-48 * time.Hour),
	}
	if state == storage.KeyActive {
		k.ActivatedAt = ptrTo(at(-24 * time.Hour))
	}
	return k
}

// seed holds the parent rows most tests need: two users and two clients.
type seed struct {
	alice, bob   *storage.User
	web, spa     *storage.Client
	aliceSession *storage.Session
}

// seedStore creates the users "alice" and "bob", the clients "web" and "spa",
// and a session of alice's.
func seedStore(t *testing.T, s storage.Store) seed {
	t.Helper()
	ctx := context.Background()
	sd := seed{
		alice:        newUser("alice", "alice@example.com"),
		bob:          newUser("bob", "bob@example.com"),
		web:          newClient("web"),
		spa:          newClient("spa"),
		aliceSession: newSession("alice-session", "alice"),
	}
	sd.spa.SecretHash = nil
	sd.spa.AppType, sd.spa.AuthMethod = storage.AppTypeSPA, storage.AuthMethodNone
	mustNot(t, "seed: create alice", s.CreateUser(ctx, sd.alice))
	mustNot(t, "seed: create bob", s.CreateUser(ctx, sd.bob))
	mustNot(t, "seed: create web client", s.CreateClient(ctx, sd.web))
	mustNot(t, "seed: create spa client", s.CreateClient(ctx, sd.spa))
	mustNot(t, "seed: create alice's session", s.CreateSession(ctx, sd.aliceSession))
	return sd
}
