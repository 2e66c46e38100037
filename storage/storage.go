// Package storage defines Gatehouse's domain types and the Store interface that
// every backend (storage/postgres, storage/sqlite) implements. It imports none of
// Gatehouse's other packages: op, login, keys and cmd depend on it, never the
// reverse. storage/storagetest holds the conformance suite both backends pass.
//
// Conventions every backend follows:
//   - Times are stored and returned in UTC with at least millisecond precision.
//   - Methods that act "now" take the time from the caller, so tests inject a clock.
//   - A missing row is ErrNotFound (wrapped); a unique-key clash is ErrConflict;
//     a store that cannot answer (connection lost, database down) is ErrUnavailable.
//   - Secrets never reach the store in clear: client secrets, refresh tokens,
//     session cookies, auth codes and one-time tokens are stored as SHA-256 hashes.
package storage

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them with context; callers test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	// ErrCodeReused is returned by RedeemAuthCode when the code was redeemed before.
	// The auth request is returned alongside so the caller can revoke its grant.
	ErrCodeReused = errors.New("authorization code already used")
	// ErrTokenReused is returned by RotateRefreshToken when an already rotated
	// token is presented after the grace window; the store has revoked the grant.
	ErrTokenReused = errors.New("refresh token reused")
	// ErrRevoked is returned when a refresh token's grant has been revoked.
	ErrRevoked = errors.New("revoked")
	// ErrUnavailable marks a failure of the store itself (connection lost,
	// database down or restarting, busy, disk full), never a verdict on the
	// data: callers answer it with 503 and the same request may succeed later.
	// Backends wrap such driver errors with it; the other sentinels above are
	// verdicts (the row is absent, used, revoked) that may be shown to clients.
	ErrUnavailable = errors.New("storage unavailable")
)

// User is a person who signs in. Email is stored normalised (trimmed, lower case).
type User struct {
	ID            string
	Email         string
	Name          string
	Role          string
	EmailVerified bool
	// PasswordHash is a self-describing hash string ($argon2id$…, $2a$/$2b$/$2y$…).
	PasswordHash string
	// DisabledAt is when an admin disabled the account; nil while it may
	// sign in. A disabled account cannot sign in, use a session, refresh
	// or read userinfo.
	DisabledAt *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// Version counts the changes of the row: CreateUser stores 1 (and sets
	// it on the caller's User), every update adds one. UpdateUser changes
	// the row only while it still has the version the caller read.
	Version int64
}

// Disabled reports whether an admin has disabled the account.
func (u *User) Disabled() bool { return u.DisabledAt != nil }

// UserQuery selects a page of users for SearchUsers, in the order of their
// (Email, ID) compared byte by byte.
type UserQuery struct {
	// Search, when not empty, keeps the users whose email starts with it
	// or whose name contains it, ignoring the case of ASCII letters (and,
	// on PostgreSQL, of every letter). Callers normalise it.
	Search string
	// AfterEmail and AfterID continue a listing after the user with this
	// (email, id): the last one of the previous page. Empty: from the start.
	AfterEmail, AfterID string
	// Limit is the most users returned; it must be positive.
	Limit int
}

// Client application types.
const (
	AppTypeWeb    = "web"
	AppTypeNative = "native"
	AppTypeSPA    = "spa"
)

// Client authentication methods at the token, introspection and revocation endpoints.
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none"
	// AuthMethodPrivateKeyJWT: the client signs an assertion with a key
	// whose public half it registered (RFC 7523 §2.2, OIDC Core §9); it has
	// no secret.
	AuthMethodPrivateKeyJWT = "private_key_jwt"
)

// Access token formats.
const (
	AccessTokenOpaque = "opaque"
	AccessTokenJWT    = "jwt"
)

// ScopeAdmin is the scope of the admin API (/admin/api/v1/): a token needs
// it, and only a client that lists it in AllowedScopes gets it.
const ScopeAdmin = "gatehouse:admin"

// Client is a registered relying party.
type Client struct {
	ID   string
	Name string
	// SecretHash is the SHA-256 of the client secret; empty for public clients.
	SecretHash             []byte
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	AppType                string   // AppTypeWeb, AppTypeNative, AppTypeSPA
	AuthMethod             string   // AuthMethodBasic, AuthMethodPost, AuthMethodNone, AuthMethodPrivateKeyJWT
	GrantTypes             []string // authorization_code, refresh_token, client_credentials
	AccessTokenFormat      string   // AccessTokenOpaque or AccessTokenJWT
	RequireConsent         bool
	// RequireMFA: every sign-in into this client needs two factors; users
	// without one enrol first.
	RequireMFA bool
	// Resources are the RFC 8707 resource indicators (absolute URIs) the
	// client may ask access tokens for; the first is the audience of its
	// tokens when a request names none.
	Resources []string
	// AllowedScopes are the scopes beyond the OpenID Connect ones (openid,
	// profile, email, offline_access) the client may ask for, such as
	// ScopeAdmin; a request for any other is invalid_scope.
	AllowedScopes []string
	// BackchannelLogoutURI is where logout tokens are POSTed when a session
	// the client received tokens in ends (OpenID Connect Back-Channel
	// Logout 1.0); "" means the client registered none.
	BackchannelLogoutURI string
	// BackchannelLogoutSessionRequired: the client wants "sid" in its
	// logout tokens.
	BackchannelLogoutSessionRequired bool
	// OfflineSurvivesLogout: refresh tokens granted with offline_access to
	// this client survive the end of the SSO session they were issued in
	// (OIDC Core §11); otherwise every grant of a session ends with it.
	OfflineSurvivesLogout bool
	CreatedAt             time.Time
	UpdatedAt             time.Time
	// RequireDPoP (DPoP, RFC 9449): every token request of the client must
	// carry a DPoP proof, so all its access tokens are sender-constrained.
	RequireDPoP bool
	// Version counts the changes of the row, as User.Version does:
	// CreateClient stores 1, UpdateClient adds one.
	Version int64

	// RequirePAR (pushed authorization requests, RFC 9126): the client may
	// start a sign-in only with a request_uri from the PAR endpoint.
	RequirePAR bool
	// private_key_jwt: the client's public signing keys, either as a JWKS
	// JSON document kept here or as the URL that serves it (one of the two,
	// and only for AuthMethodPrivateKeyJWT; "" otherwise).
	JWKS    string
	JWKSURI string
	// IDTokenSignedResponseAlg is the algorithm of the client's ID tokens,
	// JWT access tokens and logout tokens (OIDC Dynamic Client Registration
	// 1.0 §2's id_token_signed_response_alg): RS256, ES256 or EdDSA; ""
	// means the instance default.
	IDTokenSignedResponseAlg string
}

// AuthRequest is a validated /authorize request. While the user signs in it
// travels sealed in the browser's URL (package op), costing no storage; it is
// stored when the user has signed in for it (completion fields set), and is
// then the record its authorization code points at.
type AuthRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	State               string
	Nonce               string
	Scopes              []string
	ResponseType        string
	ResponseMode        string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	// MaxAge in seconds; nil when the request carried none.
	MaxAge    *int64
	LoginHint string
	// HintSubject is the sub of a verified id_token_hint, or "".
	HintSubject string
	// Resources are the RFC 8707 resource indicators the request named,
	// each allowed for the client.
	Resources []string
	// ACRValues are the acr values the app asked for (a preference list).
	// The sign-in flow reads them; they travel sealed with the pending
	// request and are not stored (the acr a code yields follows from AMR).
	ACRValues []string
	CreatedAt time.Time
	ExpiresAt time.Time

	// Set when the user has signed in (and consented), before it is stored.
	Done      bool
	UserID    string
	SessionID string
	AuthTime  time.Time
	AMR       []string
	// IDP is the session's upstream identity provider (Session.IDP).
	IDP string

	// Set by SaveAuthCode, or stored by CreateAuthRequest when CodeHash is
	// set; CodeUsedAt by RedeemAuthCode.
	CodeExpiresAt time.Time
	CodeUsedAt    *time.Time
	// CodeHash, when set, is the SHA-256 of the request's authorization
	// code, stored by CreateAuthRequest with CodeExpiresAt in the same
	// write: a completed sign-in is then one write, not two (op.Finish). It
	// is never read back.
	CodeHash []byte
	// DPoPJKT (DPoP, RFC 9449 §10) is the JWK SHA-256 thumbprint the
	// request's dpop_jkt parameter bound the code to: redeeming it needs a
	// proof signed with that key. "" when unbound.
	DPoPJKT string
}

// Grant is what one sign-in of a user into one client produced: the parent of
// every token issued from one authorization code (and its refresh-token family).
// Access tokens carry its ID; revoking the grant invalidates all of them.
type Grant struct {
	ID        string
	UserID    string
	ClientID  string
	SessionID string
	Scopes    []string
	// Resources the grant's access tokens may be for (RFC 8707).
	Resources []string
	AuthTime  time.Time
	AMR       []string
	// IDP is the upstream identity provider of the sign-in that produced the
	// grant (Session.IDP); it stays with the grant's refreshes.
	IDP       string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
	// DPoPJKT (DPoP, RFC 9449 §5) is the JWK SHA-256 thumbprint of the key
	// the grant's refresh tokens are bound to (public clients only): a
	// refresh needs a proof signed with it. "" when unbound.
	DPoPJKT string
}

// RefreshToken is one member of a grant's rotation chain, stored by hash.
type RefreshToken struct {
	Hash       []byte
	GrantID    string
	ParentHash []byte // nil for the first token of a grant
	Scopes     []string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RotatedAt  *time.Time
}

// RefreshTokenWithGrant is a refresh token with its grant and the grant's
// user, as GetRefreshTokenWithGrant reads them.
type RefreshTokenWithGrant struct {
	Token *RefreshToken
	Grant *Grant
	User  *User
}

// AuthRequestWithUser is a completed auth request with the user who signed
// in for it, as GetAuthRequestWithUser reads them.
type AuthRequestWithUser struct {
	Request *AuthRequest
	User    *User
}

// RotateOutcome says what RotateRefreshToken did.
type RotateOutcome int

const (
	// Rotated: the parent was current; it is now rotated and the successor stored.
	Rotated RotateOutcome = iota + 1
	// ReissuedInGrace: the parent had been rotated within the grace window; the
	// successor stored then is still valid and the caller hands out the same value.
	ReissuedInGrace
)

// Session is a browser's single-sign-on session. The cookie holds a random value;
// the store keeps only its SHA-256 (TokenHash). ID is a separate random value that
// may appear in ID tokens as "sid".
type Session struct {
	ID         string
	TokenHash  []byte
	UserID     string
	AuthTime   time.Time
	AMR        []string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute end; IdleExpiresAt moves forward with use.
	ExpiresAt     time.Time
	IdleExpiresAt time.Time
	// IDP is the configured ID of the upstream identity provider the user
	// signed in through for this session ("github", "corp"); "" means
	// Gatehouse's own password.
	IDP string
	// UserAgent and IP are where the session was signed in from: the
	// browser's User-Agent header (cut by Clean to MaxSessionUserAgent
	// bytes) and the client's address; "" when unknown. The account page's
	// session list shows them so a user can tell their devices apart.
	UserAgent string
	IP        string
}

// SessionWithUser is a session with its user and whether that user has a
// second factor, as GetSessionWithUser reads them: what deciding on a
// browser's sign-in needs, in one read.
type SessionWithUser struct {
	Session *Session
	User    *User
	// HasSecondFactor is HasSecondFactor(User.ID) at the time of the read.
	HasSecondFactor bool
}

// MaxSessionUserAgent bounds the User-Agent kept with a session: enough
// for any real browser's, while the header is the client's to choose.
const MaxSessionUserAgent = 512

// Clean makes the client-sent fields of s storable whatever a browser
// sent: valid UTF-8 without control characters (PostgreSQL refuses invalid
// UTF-8, which would make the sign-in fail), the user agent clipped to
// MaxSessionUserAgent bytes on a rune boundary. Backends call it in
// CreateSession, so no caller can forget.
func (s *Session) Clean() {
	s.UserAgent = clipText(s.UserAgent, MaxSessionUserAgent)
	s.IP = cleanText(s.IP)
}

// Live reports whether s is still usable at now: before both its absolute
// and its idle expiry.
func (s *Session) Live(now time.Time) bool {
	return now.Before(s.ExpiresAt) && now.Before(s.IdleExpiresAt)
}

// Consent records the scopes a user granted a client that asks for consent.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
}

// Signing key states. A key is published in JWKS in every state; only an
// active key signs. Each algorithm has its own active and next key.
const (
	KeyNext    = "next"
	KeyActive  = "active"
	KeyRetired = "retired"
)

// SigningKey is a token signing key. The private key is encrypted by package keys
// before it reaches the store.
type SigningKey struct {
	ID          string // kid
	Algorithm   string // RS256, ES256, EdDSA
	State       string // KeyNext, KeyActive, KeyRetired
	PrivateKey  []byte // encrypted PKCS#8
	PublicKey   []byte // PKIX DER
	CreatedAt   time.Time
	ActivatedAt *time.Time
	RetiredAt   *time.Time
	// RemoveAfter is when a retired key may leave JWKS (tokens it signed have expired).
	RemoveAfter *time.Time
}

// LoginAttempt is the outcome of RegisterLoginAttempt.
type LoginAttempt struct {
	// Allowed: the caller may check the password. When false the key is locked.
	Allowed bool
	// LockedUntil is set when the key is locked (now or by this attempt, should
	// it fail).
	LockedUntil time.Time
	// Failures counts consecutive failures including this attempt.
	Failures int
}

// One-time token kinds.
const (
	TokenVerifyEmail   = "verify_email"
	TokenResetPassword = "reset_password"
	TokenChangeEmail   = "change_email"
)

// OneTimeToken is a single-use emailed token (verification, reset, email
// change), stored by SHA-256.
type OneTimeToken struct {
	Hash   []byte
	Kind   string
	UserID string
	// Email is the address the token was sent to (for change_email, the new one).
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// LinkedIdentity ties an account at an upstream identity provider to a local
// user. It is keyed by (Upstream, Subject), never by email: an address can
// change hands at the upstream, the subject does not.
type LinkedIdentity struct {
	Upstream string // the upstream's configured ID, e.g. "github", "corp"
	// Subject is the upstream's stable identifier of the account: the GitHub
	// numeric user ID as a string, an OIDC issuer's "sub".
	Subject string
	UserID  string
	// Email is what the upstream reported at link time, for display only;
	// nothing is ever looked up or linked by it.
	Email     string
	CreatedAt time.Time
	// LastUsedAt is the last sign-in through the link; zero if never used.
	LastUsedAt time.Time
}

// WebAuthnCredential is a passkey or security key registered by a user.
type WebAuthnCredential struct {
	ID              []byte // the credential ID, unique across users
	UserID          string
	Name            string // the user's label, e.g. "MacBook"
	PublicKey       []byte // COSE public key
	AttestationType string
	AAGUID          []byte
	// SignCount is the authenticator's signature counter at the last
	// registration or use; 0 for authenticators without one (most synced
	// passkeys).
	SignCount      uint32
	Transports     []string
	UserVerified   bool // user verification at registration
	BackupEligible bool // synced passkey possible (BE flag)
	BackupState    bool // currently backed up / synced (BS flag)
	CreatedAt      time.Time
	LastUsedAt     time.Time // zero if never used
}

// MaxWebAuthnUserHandle is the longest user handle WebAuthn allows, in bytes.
const MaxWebAuthnUserHandle = 64

// TOTPFactor is a user's time-based one-time password (RFC 6238) factor. A
// user has at most one.
type TOTPFactor struct {
	UserID string
	// SecretEnc is the shared secret, encrypted by the caller before it
	// reaches the store.
	SecretEnc []byte
	CreatedAt time.Time
	// LastStep is the last time step whose code was accepted; 0 before the
	// first use. A code of this step or an earlier one is never accepted
	// again.
	LastStep   int64
	LastUsedAt time.Time // zero if never used
}

// Store is the persistence Gatehouse needs. Implementations must be safe for
// concurrent use by many goroutines and by several processes sharing one database.
type Store interface {
	// Users. Email lookups are exact on the normalised (lower-case) address.
	// Every method that changes a user adds one to its Version.
	//
	// CreateUser stores u with Version 1 and sets u.Version; ErrConflict on
	// a duplicate email or ID.
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, id string) (*User, error)
	GetUserByEmail(ctx context.Context, email string) (*User, error)
	// SearchUsers returns up to q.Limit users matching q, ordered by
	// (Email, ID) byte by byte; empty (no error) when none match.
	SearchUsers(ctx context.Context, q UserQuery) ([]User, error)
	// UpdateUser replaces the name, role, email_verified, password hash
	// and DisabledAt of user u.ID, and sets UpdatedAt, if the stored
	// Version is still u.Version (compare-and-set, one statement); then
	// u.Version is the new version. ErrConflict when the version differs
	// (someone changed the user since it was read), ErrNotFound when there
	// is no such user. The email changes only through UpdateUserEmail.
	UpdateUser(ctx context.Context, u *User) error
	UpdateUserPassword(ctx context.Context, id, passwordHash string, now time.Time) error
	SetUserEmailVerified(ctx context.Context, id string, verified bool, now time.Time) error
	// DeleteUser also removes the user's sessions, grants, consents, linked
	// identities, passkeys, WebAuthn user handle, TOTP and recovery codes.
	DeleteUser(ctx context.Context, id string) error

	// Clients.
	//
	// CreateClient stores c with Version 1 and sets c.Version; ErrConflict
	// on a duplicate ID.
	CreateClient(ctx context.Context, c *Client) error
	GetClient(ctx context.Context, id string) (*Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient replaces every field but ID and CreatedAt and adds one
	// to the version, which it sets in c.Version. When c.Version is not 0
	// it is a compare-and-set: ErrConflict unless the stored version is
	// still c.Version. ErrNotFound when there is no such client.
	UpdateClient(ctx context.Context, c *Client) error
	DeleteClient(ctx context.Context, id string) error

	// Auth requests and codes.
	// CreateAuthRequest stores a completed request, once: ErrConflict if a
	// request with its ID exists (a second completion, for anyone). With
	// r.CodeHash set it stores the code too (hash and CodeExpiresAt), as
	// SaveAuthCode would, in the same write.
	CreateAuthRequest(ctx context.Context, r *AuthRequest) error
	GetAuthRequest(ctx context.Context, id string) (*AuthRequest, error)
	// GetAuthRequestWithUser returns the request with id and the user who
	// signed in for it in one read (a code exchange needs both);
	// ErrNotFound when there is no such request or no user has signed in
	// for it (or that user was deleted).
	GetAuthRequestWithUser(ctx context.Context, id string) (*AuthRequestWithUser, error)
	// SaveAuthCode attaches the (only) code of a request: ErrConflict if one
	// was saved before (a second callback must not mint a second code),
	// ErrNotFound if there is no such request.
	SaveAuthCode(ctx context.Context, id string, codeHash []byte, expiresAt time.Time) error
	// RedeemAuthCode atomically marks the code used and returns its request.
	// A second redemption returns the request and ErrCodeReused. Expiry is the
	// caller's check (CodeExpiresAt).
	RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time) (*AuthRequest, error)
	DeleteAuthRequest(ctx context.Context, id string) error

	// Grants and refresh tokens.
	CreateGrant(ctx context.Context, g *Grant) error
	// CreateGrantWithRefreshToken stores g and its first refresh token t in
	// one transaction: both or neither (ErrConflict if g.ID exists), so a
	// failure between the two cannot leave a grant whose tokens nobody got.
	CreateGrantWithRefreshToken(ctx context.Context, g *Grant, t *RefreshToken) error
	// RedeemCodeAndCreateGrant redeems an authorization code and stores the
	// grant it yields (with its first refresh token when t is not nil) in
	// one transaction: the code of the auth request whose ID is g.ID (a
	// grant takes its request's ID) is marked used at now only if its hash
	// is codeHash, it was unused and had not expired, and the grant is
	// stored only then. ErrCodeReused
	// when the code was used before (nothing is written), ErrNotFound when
	// no live code has that hash, ErrConflict when the grant's ID is taken.
	RedeemCodeAndCreateGrant(ctx context.Context, codeHash []byte, now time.Time, g *Grant, t *RefreshToken) error
	GetGrant(ctx context.Context, id string) (*Grant, error)
	RevokeGrant(ctx context.Context, id string, now time.Time) error
	// RevokeGrantsBySession revokes the grants issued in the session, except
	// those whose scopes hold offline_access for a client with
	// OfflineSurvivesLogout: offline access outlives the sign-in (OpenID
	// Connect Core §11) when the client was allowed to keep it.
	RevokeGrantsBySession(ctx context.Context, sessionID string, now time.Time) error
	// RevokeGrantsByUser revokes every grant of the user, offline ones too.
	RevokeGrantsByUser(ctx context.Context, userID string, now time.Time) error
	CreateRefreshToken(ctx context.Context, t *RefreshToken) error
	GetRefreshToken(ctx context.Context, hash []byte) (*RefreshToken, error)
	// GetRefreshTokenWithGrant returns the token with hash, its grant and
	// the grant's user in one read (a refresh needs all three); ErrNotFound
	// when there is no such token or its grant has no user.
	GetRefreshTokenWithGrant(ctx context.Context, hash []byte) (*RefreshTokenWithGrant, error)
	// RotateRefreshToken replaces the token parentHash with successor, atomically:
	//   - parent current (not rotated), grant live: mark rotated, store successor → Rotated.
	//   - parent rotated at most grace ago, grant live: store nothing → ReissuedInGrace.
	//   - parent rotated longer ago: revoke the grant → ErrTokenReused.
	//   - grant revoked: ErrRevoked. Parent unknown: ErrNotFound.
	// Concurrent calls with the same parent see exactly one Rotated.
	RotateRefreshToken(ctx context.Context, parentHash []byte, successor *RefreshToken, now time.Time, grace time.Duration) (RotateOutcome, error)

	// Access-token deny-list (revoked self-contained tokens, kept until they expire).
	DenyAccessToken(ctx context.Context, tokenID string, expiresAt time.Time) error
	IsAccessTokenDenied(ctx context.Context, tokenID string) (bool, error)

	// SSO sessions.
	// CreateSession stores s after s.Clean(): what is read back is the
	// cleaned user agent.
	CreateSession(ctx context.Context, s *Session) error
	GetSessionByTokenHash(ctx context.Context, tokenHash []byte) (*Session, error)
	// GetSessionWithUser returns the session with tokenHash (in whatever
	// state, expired included), its user and whether the user has a second
	// factor, in one read; ErrNotFound when there is no such session or its
	// user is gone.
	GetSessionWithUser(ctx context.Context, tokenHash []byte) (*SessionWithUser, error)
	GetSession(ctx context.Context, id string) (*Session, error)
	// RenewSession replaces, in place, the live session s.ID of s.UserID with
	// s: a new cookie (TokenHash), sign-in (AuthTime, AMR, IDP), device
	// (UserAgent, IP, cleaned as by CreateSession) and expiries;
	// ID and CreatedAt stay, and so do the codes and grants issued in it. A
	// re-sign-in by the same user keeps the sid its apps hold this way.
	// ErrNotFound when there is no such session, it is another user's, or it
	// is past either expiry at now (an expired session is ended, never
	// renewed). One statement: concurrent renewals and an ending cannot
	// interleave into a lost sign-out or a duplicate.
	RenewSession(ctx context.Context, s *Session, now time.Time) error
	// TouchSession records use of a live session: last seen at lastSeen, idle
	// expiry moved to idleExpiresAt but never past the absolute expiry.
	// ErrNotFound for an unknown session or one already past either expiry
	// at lastSeen: use never revives an expired session.
	TouchSession(ctx context.Context, id string, lastSeen, idleExpiresAt time.Time) error
	// DeleteSession and DeleteSessionsByUser also delete the sessions'
	// completed auth requests whose code was not redeemed: signing out stops
	// a code in flight (redeemed ones stay, so a replay is still recognised).
	DeleteSession(ctx context.Context, id string) error
	DeleteSessionsByUser(ctx context.Context, userID string) error
	// ListSessionsByUser returns the user's sessions (expired ones too),
	// newest first; empty for none.
	ListSessionsByUser(ctx context.Context, userID string) ([]Session, error)
	// ListExpiredSessions returns up to limit sessions past their absolute
	// or idle expiry at now, the earliest absolute expiry first. Expired
	// sessions stay until ended one by one (so their apps are told);
	// DeleteExpired does not remove them.
	ListExpiredSessions(ctx context.Context, now time.Time, limit int) ([]Session, error)
	// UpdateSessionAuth replaces the session's AMR and AuthTime (a second
	// factor added to a signed-in session, or a fresh authentication).
	// ErrNotFound for an unknown session.
	UpdateSessionAuth(ctx context.Context, id string, amr []string, authTime time.Time) error

	// UpdateUserEmail changes the address (normalised) and its verified flag.
	// ErrConflict if another user has it.
	UpdateUserEmail(ctx context.Context, id, email string, verified bool, now time.Time) error

	// Sign-in lockout, keyed by the normalised submitted email whether or not an
	// account exists (so lockout reveals nothing).
	//
	// RegisterLoginAttempt reserves one password check, atomically, before the
	// password is verified: if the key is locked (LockedUntil > now) it returns
	// Allowed=false. Otherwise it counts the attempt as a failure in advance
	// (a lock that expired starts a fresh count) and, when that makes threshold
	// failures, sets LockedUntil = now+lockFor right away. So N parallel
	// attempts let at most threshold password checks through. A successful
	// sign-in calls ClearLoginFailures, which also lifts a lock this attempt set.
	RegisterLoginAttempt(ctx context.Context, key string, now time.Time, threshold int, lockFor time.Duration) (LoginAttempt, error)
	ClearLoginFailures(ctx context.Context, key string) error // also `users unlock`
	// LoginLocks returns, for those of keys that are locked at now, when
	// their lock ends; keys without a lock are absent. It changes nothing.
	LoginLocks(ctx context.Context, keys []string, now time.Time) (map[string]time.Time, error)

	// One-time tokens.
	// CreateOneTimeToken stores t and deletes the user's earlier tokens of the
	// same kind (a new link replaces older ones).
	CreateOneTimeToken(ctx context.Context, t *OneTimeToken) error
	// ConsumeOneTimeToken atomically marks the token used and returns it.
	// ErrNotFound if it is unknown, of another kind, used or expired.
	ConsumeOneTimeToken(ctx context.Context, hash []byte, kind string, now time.Time) (*OneTimeToken, error)

	// Consents.
	GetConsent(ctx context.Context, userID, clientID string) (*Consent, error)
	SaveConsent(ctx context.Context, c *Consent) error // insert or replace

	// Signing keys.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// CreateSigningKey inserts k. ErrConflict if its ID is taken, or if it is
	// active (or next) while another key of its algorithm already is.
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// RotateSigningKeys rotates the keys of newNext.Algorithm atomically: the
	// active key with ID activeID becomes retired (RetiredAt now, RemoveAfter
	// removeAfter), the key nextID becomes active (ActivatedAt now), and
	// newNext is inserted as next. ErrConflict if activeID is no longer active
	// or nextID no longer next (another process rotated first), or if either
	// is of another algorithm than newNext.
	RotateSigningKeys(ctx context.Context, activeID, nextID string, newNext *SigningKey, now, removeAfter time.Time) error

	// Linked upstream identities (sign-in through GitHub or an OIDC issuer).
	// A link is found by (upstream, subject) only, never by email.
	//
	// LinkIdentity stores l: ErrConflict if (l.Upstream, l.Subject) is
	// already linked, to this user or another (a second link never moves or
	// duplicates the first); ErrNotFound if l.UserID is not a user.
	LinkIdentity(ctx context.Context, l *LinkedIdentity) error
	// GetLinkedIdentity returns the link of (upstream, subject); ErrNotFound
	// when the account is not linked.
	GetLinkedIdentity(ctx context.Context, upstream, subject string) (*LinkedIdentity, error)
	// ListLinkedIdentities returns the user's links ordered by upstream, then
	// subject; empty (no error) for a user without links or an unknown one.
	ListLinkedIdentities(ctx context.Context, userID string) ([]LinkedIdentity, error)
	// TouchLinkedIdentity sets the link's LastUsedAt to usedAt; ErrNotFound
	// when the account is not linked.
	TouchLinkedIdentity(ctx context.Context, upstream, subject string, usedAt time.Time) error
	// UnlinkIdentity removes the user's links to upstream (every subject);
	// ErrNotFound when the user has none there. Other users' links to the
	// upstream stay. DeleteUser removes all of a user's links.
	UnlinkIdentity(ctx context.Context, userID, upstream string) error

	// Passkeys and security keys (WebAuthn).
	//
	// CreateWebAuthnCredential stores c: ErrConflict if a credential with
	// c.ID exists (for this user or another); ErrNotFound if c.UserID is not
	// a user.
	CreateWebAuthnCredential(ctx context.Context, c *WebAuthnCredential) error
	// GetWebAuthnCredential returns the credential with id; ErrNotFound.
	GetWebAuthnCredential(ctx context.Context, id []byte) (*WebAuthnCredential, error)
	// ListWebAuthnCredentials returns the user's credentials ordered by
	// CreatedAt, then ID (bytes); empty (no error) for none or an unknown user.
	ListWebAuthnCredentials(ctx context.Context, userID string) ([]WebAuthnCredential, error)
	// UseWebAuthnCredential records a successful assertion atomically: it
	// sets SignCount to newCount, BackupState and LastUsedAt. ErrConflict (a
	// cloned authenticator) when both the stored and the new count are
	// non-zero and newCount <= the stored count, checked in the same
	// statement, so concurrent uses of one counter value see one success. A
	// zero newCount (an authenticator that stopped counting) leaves a
	// non-zero stored count as it is: the counter never goes down, so a
	// clone that counts is still caught later. ErrNotFound for an unknown ID.
	UseWebAuthnCredential(ctx context.Context, id []byte, newCount uint32, backupState bool, usedAt time.Time) error
	// DeleteWebAuthnCredential removes the user's credential id; ErrNotFound
	// when the user has no such credential (another user's counts as none).
	DeleteWebAuthnCredential(ctx context.Context, userID string, id []byte) error

	// WebAuthn user handles: a random, stable, non-identifying handle per
	// user (never the email), the user.id authenticators store.
	//
	// WebAuthnUserHandle returns the user's handle, storing candidate first
	// if the user has none, atomically: concurrent callers with different
	// candidates all get the one stored. ErrNotFound for an unknown user;
	// ErrConflict if candidate is another user's handle. A candidate that is
	// empty or longer than 64 bytes (WebAuthn's limit) is an error.
	WebAuthnUserHandle(ctx context.Context, userID string, candidate []byte) ([]byte, error)
	// GetUserByWebAuthnHandle returns the user with the handle; ErrNotFound.
	GetUserByWebAuthnHandle(ctx context.Context, handle []byte) (*User, error)

	// TOTP.
	//
	// SetTOTP inserts or replaces the user's TOTP factor (LastStep and
	// LastUsedAt become f's); ErrNotFound for an unknown user.
	SetTOTP(ctx context.Context, f *TOTPFactor) error
	// GetTOTP returns the user's TOTP factor; ErrNotFound when there is none.
	GetTOTP(ctx context.Context, userID string) (*TOTPFactor, error)
	// HasSecondFactor reports, in one statement, whether the user has a TOTP
	// factor or a passkey: what decides whether a sign-in needs a second
	// step, asked on every SSO sign-in. No error for an unknown user.
	HasSecondFactor(ctx context.Context, userID string) (bool, error)
	// UseTOTPStep accepts step for the user, atomically: ErrConflict when
	// step <= LastStep (a code reused, or an older one after a newer was
	// accepted); otherwise it sets LastStep and LastUsedAt. ErrNotFound when
	// the user has no TOTP. Of concurrent calls with one step exactly one
	// returns nil.
	UseTOTPStep(ctx context.Context, userID string, step int64, usedAt time.Time) error
	// DeleteTOTP removes the user's TOTP factor; ErrNotFound when none.
	DeleteTOTP(ctx context.Context, userID string) error

	// Recovery codes, stored as SHA-256 hashes by the caller.
	//
	// ReplaceRecoveryCodes stores hashes as the user's codes and voids every
	// earlier code of the user, in one transaction. ErrNotFound for an
	// unknown user (with hashes to store); ErrConflict if hashes repeats one.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error
	// UseRecoveryCode marks the user's unused code with this hash used and
	// returns how many unused codes the user has left, atomically.
	// ErrNotFound when the user has no such unused code (used, another
	// user's, unknown). Of concurrent uses of one code exactly one succeeds.
	UseRecoveryCode(ctx context.Context, userID string, hash []byte, usedAt time.Time) (remaining int, err error)
	// CountRecoveryCodes returns the user's unused codes; 0 when none.
	CountRecoveryCodes(ctx context.Context, userID string) (int, error)

	// DeleteMFA removes every second factor of the user (passkeys, TOTP,
	// recovery codes) in one transaction; the user handle stays. No error
	// when there are none.
	DeleteMFA(ctx context.Context, userID string) error

	// Single-use markers: values a peer may present once (an upstream
	// sign-in's state; DPoP and client-assertion jti), remembered until they
	// could no longer be accepted anyway.
	//
	// MarkUsed records key as used until expiresAt. ErrConflict when key is
	// already marked and that mark has not expired at now (a replay); an
	// expired mark is replaced. Concurrent calls with one key see exactly one
	// success. DeleteExpired removes marks past their expiry. An empty key
	// is an error, never a mark every caller would share.
	MarkUsed(ctx context.Context, key string, expiresAt, now time.Time) error

	// Import from another system (import.go).
	//
	// ImportUsers applies users by ApplyImport's rules in one transaction:
	// the whole batch or nothing. With opt.DryRun it rolls back, so the
	// outcomes are what a real run would report and nothing is written.
	ImportUsers(ctx context.Context, users []ImportUser, opt ImportOptions) ([]ImportOutcome, error)

	// Audit trail (audit.go).
	AuditLog

	// Back-channel logout outbox (logout.go).
	LogoutOutbox

	// Pushed authorization requests, RFC 9126 (par.go).
	PushedRequests
	// Device authorization grant, RFC 8628 (device.go).
	DeviceAuthorizations
	// Dynamic client registration (registration.go).
	RegistrationStore

	// Maintenance.
	// DeleteExpired removes expired auth requests, grants, refresh tokens,
	// deny-list entries, one-time tokens, used markers, device authorizations, login-attempt rows whose
	// lock has expired and that were last touched over a day ago, retired keys
	// past RemoveAfter, logout deliveries delivered or given up more than
	// LogoutDeliveryRetention ago, and expired pushed authorization requests.
	// It returns rows removed.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
	// WithLock runs fn while holding a named cross-process lock, if it can get it
	// without waiting; ran is false when another process holds it.
	WithLock(ctx context.Context, name string, fn func(ctx context.Context) error) (ran bool, err error)
	Ping(ctx context.Context) error
	Close() error
}
