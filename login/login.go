// Package login is Gatehouse's server-rendered sign-in UI: the password form,
// the single-sign-on session cookie, the consent page and sign-out.
//
// It opens, completes and fails authorization requests, and hands the browser
// back to the OpenID side, through the small Flow interface; it does not
// import package op, nor any storage backend.
//
// Every page is plain HTML and CSS from embedded templates: no JavaScript. Every
// form POST carries a double-submit CSRF token and passes through
// http.CrossOriginProtection. See headers.go for the response headers and the
// Content-Security-Policy.
package login

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-id/gatehouse/internal/emailhash"
	"github.com/gatehouse-id/gatehouse/internal/httpobs"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/requestid"
	"github.com/gatehouse-id/gatehouse/login/mail"
	"github.com/gatehouse-id/gatehouse/login/mfa"
	"github.com/gatehouse-id/gatehouse/login/password"
	"github.com/gatehouse-id/gatehouse/login/policy"
	"github.com/gatehouse-id/gatehouse/login/upstream"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Flow is how login hands an authorization request back to the OIDC side
// (package op implements it; login must not import op).
type Flow interface {
	// PendingRequest opens the pending authorization request that handle
	// (the authRequestID parameter of the sign-in URL) carries. An invalid
	// or expired handle is storage.ErrNotFound.
	PendingRequest(ctx context.Context, handle string) (*storage.AuthRequest, error)
	// Finish records that the session's user signed in for ar, once, and
	// answers the browser with the authorization response (the code, to
	// the app's redirect_uri). A second completion is storage.ErrConflict
	// and leaves w untouched. sess says who, when and how (user, auth
	// time, amr, upstream).
	Finish(w http.ResponseWriter, r *http.Request, ar *storage.AuthRequest, sess *storage.Session) error
	// Fail redirects the browser to the client's redirect_uri with an OAuth
	// error (e.g. "login_required", "consent_required", "access_denied") plus
	// state and iss.
	Fail(w http.ResponseWriter, r *http.Request, ar *storage.AuthRequest, errorCode, description string)
	// StartedHere reports whether this browser started the authorization
	// request (the authorization endpoint leaves a cookie bound to it). A
	// request opened in another browser must not be completed there: whoever
	// started it would then collect the code for the other browser's user.
	StartedHere(r *http.Request, authRequestID string) bool
	// EndSession ends one session: its apps are told (back-channel logout,
	// queued, never waited on), its grants revoked except offline ones a
	// client may keep, the session deleted. reason says why ("logout", …).
	// ended is false when the session was already gone.
	EndSession(ctx context.Context, sess *storage.Session, reason string) (ended bool, err error)
	// EndUserSessions ends every session of the user and revokes all of
	// the user's grants, offline ones too (password change or reset,
	// account deletion), and returns how many sessions ended.
	EndUserSessions(ctx context.Context, userID, reason string) (int, error)
}

// Config configures the UI. Zero values get the documented defaults.
type Config struct {
	Issuer      string        // absolute base URL of the UI (links in emails); https ⇒ cookies get Secure
	SessionIdle time.Duration // default 24h (idle), refreshed on use
	SessionMax  time.Duration // default 30*24h (absolute)
	CSRFKey     [32]byte      // HMAC key for form tokens
	Now         func() time.Time
	Logger      *slog.Logger

	// Branding.
	ProductName string // default "Gatehouse"
	LogoURL     string // absolute https URL or same-site path of the logo; default the bundled logo
	BrandColor  string // primary colour "#rgb" or "#rrggbb"; default "#1f5fbf"; New panics on anything else

	// Registration and email verification.
	DisableRegistration  bool   // hide /register (default: open registration)
	RequireVerifiedEmail bool   // refuse sign-in until the email is verified (default false)
	DefaultRole          string // role of self-registered users; default "USER" (roles are upper case)

	// Password policy for registration, reset and change (package login/policy).
	// At most 128 characters always, 72 bytes when the hasher is bcrypt.
	PasswordMinLength       int  // default 8
	PasswordNoUpperRequired bool // default: an upper-case letter is required
	PasswordNoDigitRequired bool // default: a digit is required
	PasswordAllowCommon     bool // default: passwords on the bundled common list are refused

	// Lockout (per normalised submitted email, state in the Store).
	LockoutThreshold int           // consecutive failures before the lock; default 5
	LockoutDuration  time.Duration // default 15 min
	// FailedCheckFloor is the least time a failed password check takes, so
	// that users with slower (imported bcrypt) hashes cannot be told from
	// unknown emails by timing. Default 300ms (bcrypt cost 12 takes ~250ms on
	// a small server); negative disables it.
	FailedCheckFloor time.Duration

	// Rate limits. Keys are the client IP (see TrustedProxies) and the
	// normalised email (or the user, on the account page). A zero RateLimit
	// gets its default.
	SignInPerEmail RateLimit // default 10/min
	SignInPerIP    RateLimit // default 30/min
	RegisterPerIP  RateLimit // default 10/hour
	ForgotPerEmail RateLimit // default 5/hour
	ForgotPerIP    RateLimit // default 20/hour
	ResendPerEmail RateLimit // default 5/hour
	ResendPerIP    RateLimit // default 20/hour
	AccountPerUser RateLimit // account page forms; default 10/min
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// (ratelimit.ParseTrustedProxies); empty ⇒ the TCP peer is the client.
	TrustedProxies []netip.Prefix

	// Limiter decides the rate limits; nil ⇒ an in-memory limiter
	// (ratelimit.NewMemory). A limiter that cannot answer refuses (ratelimit's package doc).
	Limiter ratelimit.Limiter
	// Mailer sends the emails; nil ⇒ every message is written to the log.
	Mailer *mail.Mailer

	// Metrics counts sign-ins, lockouts and registrations; nil counts nothing.
	Metrics *Metrics
	// EmailLogKey keys the pseudonym (package emailhash) that stands for a
	// submitted address in log lines and, for an address without an
	// account, in the audit trail; cmd derives it from GATEHOUSE_SECRET.
	EmailLogKey [32]byte

	// Upstreams are the identity providers users may sign in through
	// (package login/upstream); nil or empty shows no upstream buttons.
	Upstreams *upstream.Registry
	// UpstreamSignup lets an unknown upstream identity with a verified
	// email create an account (unless its upstream entry says otherwise).
	UpstreamSignup bool
	// UpstreamKey seals the cookies of the upstream sign-in (the leg's
	// state, nonce and PKCE verifier; an identity waiting to be linked).
	UpstreamKey [32]byte

	// Second factors (factors.go). MFARequiredRoles are the roles whose
	// users must sign in with two factors (and enrol one at their next
	// sign-in). WebAuthn runs the passkey ceremonies; nil switches
	// passkeys off (an issuer on an IP address cannot have them).
	// FactorKey encrypts TOTP secrets at rest and seals the enrolment and
	// WebAuthn ceremony cookies.
	MFARequiredRoles []string
	WebAuthn         *mfa.WebAuthn
	FactorKey        [32]byte

	// AdminRole is the role whose users administer Gatehouse (the admin
	// console, and user tokens with the admin API's scope); default
	// "ADMIN". Such a user asking for storage.ScopeAdmin must sign in with
	// two factors (factors.go).
	AdminRole string

	// Device flow (deviceflow.go): codes typed at /device per client IP
	// (default 20/hour), per session (10 per 10 minutes) and by everyone
	// together (60/minute).
	DeviceCodePerIP      RateLimit
	DeviceCodePerSession RateLimit
	DeviceCodeGlobal     RateLimit
}

// RateLimit allows Limit requests per Period for one key. A zero value means
// the default of the field it is in; a negative Limit switches the limit off.
type RateLimit struct {
	Limit  int
	Period time.Duration
}

// Hasher is what the handler needs from package password (*password.Hasher
// implements it). A busy hasher answers password.ErrBusy.
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, hash, password string) (ok, needsRehash bool, err error)
	VerifyDummy(ctx context.Context, password string) error
	// Reserve holds a hashing slot for the hashes made with the returned
	// context, until release.
	Reserve(ctx context.Context) (_ context.Context, release func(), _ error)
	Algorithm() string
}

// Cookie names.
const (
	// Cookie names; on https they carry the __Host- prefix (cookieName).
	SessionCookie = "gatehouse_session"
	CSRFCookie    = "gatehouse_csrf"
)

// Defaults.
const (
	defaultSessionIdle      = 24 * time.Hour
	defaultSessionMax       = 30 * 24 * time.Hour
	defaultBrandColor       = "#1f5fbf"
	defaultRole             = "USER"
	defaultFailedCheckFloor = 300 * time.Millisecond
	defaultLockoutThreshold = 5
	defaultLockoutDuration  = 15 * time.Minute

	// Lifetimes of the emailed links (docs/design.md).
	verifyEmailTTL   = 24 * time.Hour
	resetPasswordTTL = time.Hour
	changeEmailTTL   = 24 * time.Hour

	// maxFormBytes caps every POST body.
	maxFormBytes = 64 << 10
	// touchEvery throttles the idle-expiry refresh to one write a minute per session.
	touchEvery = time.Minute
)

// Handler serves the sign-in UI. It is an http.Handler (a chi router) serving
// its routes at the root path.
type Handler struct {
	cfg     Config
	store   storage.Store
	hasher  Hasher
	policy  policy.Password
	flow    Flow
	limiter ratelimit.Limiter
	mailer  mailer
	rules   rules
	log     *slog.Logger
	secure  bool
	issuer  string // Issuer without a trailing slash
	brand   brand
	pages   *pages
	router  chi.Router
	// crossOrigin refuses cross-site form posts (this package's and, by
	// Forms, the console's).
	crossOrigin *http.CrossOriginProtection
	bg          background
	metrics     *Metrics
	emails      emailhash.Hasher
	sealer      sealer
	totpBox     *mfa.SecretBox
	// factorSealer seals the enrolment and passkey ceremony cookies.
	factorSealer sealer
	// failFloor: see Config.FailedCheckFloor.
	failFloor time.Duration
}

// New returns the UI handler. It parses the embedded templates once and
// panics if they are broken (a build defect, caught by the tests) or if cfg
// is invalid (check it first with Config.Validate).
func New(cfg Config, store storage.Store, hasher Hasher, flow Flow) *Handler {
	if err := cfg.Validate(); err != nil {
		panic("login: " + err.Error())
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = defaultSessionIdle
	}
	if cfg.SessionMax <= 0 {
		cfg.SessionMax = defaultSessionMax
	}
	if cfg.ProductName == "" {
		cfg.ProductName = "Gatehouse"
	}
	if cfg.AdminRole == "" {
		cfg.AdminRole = "ADMIN"
	}
	if cfg.DefaultRole == "" {
		cfg.DefaultRole = defaultRole
	}
	if cfg.LockoutThreshold <= 0 {
		cfg.LockoutThreshold = defaultLockoutThreshold
	}
	if cfg.LockoutDuration <= 0 {
		cfg.LockoutDuration = defaultLockoutDuration
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FailedCheckFloor == 0 {
		cfg.FailedCheckFloor = defaultFailedCheckFloor
	}
	h := &Handler{
		failFloor:    cfg.FailedCheckFloor,
		cfg:          cfg,
		store:        store,
		hasher:       hasher,
		flow:         flow,
		log:          cfg.Logger.With("component", "login"),
		secure:       strings.HasPrefix(strings.ToLower(cfg.Issuer), "https://"),
		issuer:       strings.TrimRight(cfg.Issuer, "/"),
		pages:        mustParsePages(),
		metrics:      cfg.Metrics,
		emails:       emailhash.New(cfg.EmailLogKey),
		sealer:       newSealer(cfg.UpstreamKey),
		totpBox:      mfa.NewSecretBox(cfg.FactorKey),
		factorSealer: newSealer(cfg.FactorKey),
	}
	h.policy = policy.Password{
		MinLength:    cfg.PasswordMinLength,
		RequireUpper: !cfg.PasswordNoUpperRequired,
		RequireDigit: !cfg.PasswordNoDigitRequired,
		CheckCommon:  !cfg.PasswordAllowCommon,
	}
	if hasher.Algorithm() == password.Bcrypt {
		h.policy.MaxBytes = policy.BcryptMaxBytes
	}
	h.rules = newRules(&cfg)
	h.limiter = cfg.Limiter
	if h.limiter == nil {
		h.limiter = ratelimit.NewMemory(ratelimit.DefaultMaxKeys, cfg.Now)
	}
	h.mailer = newMailer(&cfg, h.log)
	h.brand = newBrand(cfg.BrandColor, cfg.LogoURL)
	h.router = h.routes()
	return h
}

// Validate reports configuration errors New would panic on.
func (c Config) Validate() error {
	if c.BrandColor != "" {
		if _, ok := parseHexColor(c.BrandColor); !ok {
			return fmt.Errorf("brand colour %q: want a hex colour like #1f5fbf or #15b", c.BrandColor)
		}
	}
	if c.LogoURL != "" && !validLogoURL(c.LogoURL) {
		return fmt.Errorf("logo URL %q: want an absolute https:// (or http://) URL or a path starting with /", c.LogoURL)
	}
	if c.PasswordMinLength > policy.MaxLength {
		return fmt.Errorf("password minimum length %d is above the maximum of %d", c.PasswordMinLength, policy.MaxLength)
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.router.ServeHTTP(w, r)
}

// Wait blocks until background work started by requests (the look-ups and
// emails behind "forgot password" and "resend verification") has finished,
// or ctx ends. Call it at shutdown after the HTTP server has stopped.
func (h *Handler) Wait(ctx context.Context) error {
	return h.bg.wait(ctx)
}

// routes builds the router. GET handlers render with h.render; POST handlers
// go in the protected group, which checks the Origin / Sec-Fetch-Site headers
// and the CSRF token before the handler runs, so a handler only reads its
// already-parsed r.PostForm.
func (h *Handler) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(httpobs.ChiRoute, h.recoverer, h.securityHeaders)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		h.renderError(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.", "")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		h.renderError(w, r, http.StatusMethodNotAllowed, "Not allowed", "This page cannot be used that way.", "")
	})

	r.Get("/static/*", h.static)
	r.Get("/brand.css", h.brandCSS)

	r.Get("/login", h.getLogin)
	r.Get("/logout", h.getLogout)
	r.Get("/register", h.getRegister)
	r.Get("/verify-email", h.getVerifyEmail)
	r.Get("/verify-email/resend", h.getResend)
	r.Get("/forgot", h.getForgot)
	r.Get("/reset", h.getReset)
	r.Get("/account", h.getAccount)
	r.Get("/account/confirm-email", h.getConfirmEmail)
	r.Get("/login/factor", h.getFactor)
	r.Get("/account/security/setup", h.getSecuritySetup)
	r.Get("/account/totp", h.getTOTPSetup)
	r.Get("/account/totp/qr.png", h.getTOTPQR)
	r.Get("/account/recovery-codes", h.getRecoveryCodes)
	r.Get("/account/reauth", h.getReauth)
	r.Get("/upstream/{upstream}/start", h.getUpstreamStart)
	r.Get("/upstream/{upstream}/callback", h.getUpstreamCallback)
	r.Get(devicePath, h.getDevice)

	cop := http.NewCrossOriginProtection()
	h.crossOrigin = cop
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.log.WarnContext(r.Context(), "cross-origin form post refused", "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		h.renderError(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site, so it was not accepted. Go back to the application and try again.", "")
	}))
	r.Group(func(r chi.Router) {
		r.Use(cop.Handler, h.checkForm)
		r.Post("/login", h.postLogin)
		r.Post("/consent", h.postConsent)
		r.Post("/logout", h.postLogout)
		r.Post("/register", h.postRegister)
		r.Post("/verify-email/resend", h.postResend)
		r.Post("/forgot", h.postForgot)
		r.Post("/reset", h.postReset)
		r.Post("/account/password", h.postChangePassword)
		r.Post("/account/email", h.postChangeEmail)
		r.Post("/account/delete", h.postDeleteAccount)
		r.Post("/account/upstreams/unlink", h.postUnlink)
		r.Post("/account/sessions/end", h.postEndSession)
		r.Post("/account/sessions/end-others", h.postEndOtherSessions)
		r.Post("/login/factor", h.postFactor)
		r.Post("/account/totp", h.postTOTPSetup)
		r.Post("/account/totp/remove", h.postTOTPRemove)
		r.Post("/account/recovery-codes", h.postRecoveryCodes)
		r.Post("/account/reauth", h.postReauth)
		r.Post("/login/passkey/begin", h.postPasskeyBegin)
		r.Post("/login/passkey", h.postPasskeySignIn)
		r.Post("/login/factor/passkey/begin", h.postFactorPasskeyBegin)
		r.Post("/login/factor/passkey", h.postFactorPasskey)
		r.Post("/account/reauth/passkey/begin", h.postReauthPasskeyBegin)
		r.Post("/account/reauth/passkey", h.postReauthPasskey)
		r.Post("/account/passkeys/begin", h.postPasskeyRegisterBegin)
		r.Post("/account/passkeys", h.postPasskeyRegister)
		r.Post("/account/passkeys/remove", h.postPasskeyRemove)
		r.Post(devicePath, h.postDevice)
		r.Post(devicePath+"/decide", h.postDeviceDecide)
	})
	return r
}

// NormalizeEmail returns email as the store keeps it: trimmed and lower-case.
func NormalizeEmail(email string) string {
	return policy.NormalizeEmail(email)
}

func (h *Handler) now() time.Time { return h.cfg.Now().UTC() }

// recoverer turns a panic into the friendly 500 page (and a log line) instead
// of a dropped connection.
func (h *Handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.log.ErrorContext(r.Context(), "panic in login handler", "path", r.URL.Path, "panic", v)
				h.renderError(w, r, http.StatusInternalServerError, "Something went wrong",
					"Something went wrong on our side. Please try again.", "")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// internalError logs err and renders the generic 500 page.
func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, what string, err error, attrs ...any) {
	if errors.Is(err, context.Canceled) {
		// The browser went away; nobody reads the answer.
		return
	}
	h.log.ErrorContext(r.Context(), what, append(attrs, "err", err)...)
	// The page names the request ID (also in the X-Request-Id header), which
	// finds this log line; it never shows the error itself.
	ref := ""
	if id := requestid.From(r.Context()); id != "" {
		ref = " (Reference: " + id + ")"
	}
	if errors.Is(err, storage.ErrUnavailable) {
		w.Header().Set("Retry-After", "5")
		h.renderError(w, r, http.StatusServiceUnavailable, "Please try again",
			"We cannot reach our database right now. Please try again in a moment."+ref, "")
		return
	}
	h.renderError(w, r, http.StatusInternalServerError, "Something went wrong",
		"Something went wrong on our side. Please try again in a moment."+ref, "")
}
