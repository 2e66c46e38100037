package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/registration"
	"github.com/gatehouse-id/gatehouse/login/mail"
	"github.com/gatehouse-id/gatehouse/login/mfa"
	"github.com/gatehouse-id/gatehouse/login/password"
	"github.com/gatehouse-id/gatehouse/login/upstream"
)

// setting is one configuration value: an environment variable and a flag of
// the same name, with a default. Every setting is listed in the README table
// (TestREADMEListsEverySetting keeps the two in step).
type setting struct {
	flag  string // --flag
	env   string // environment variable
	def   string
	usage string
	scope scope // the commands that take it as a flag
	kind  kind  // how it is parsed; a bool is a flag without a value
}

// scope is a set of commands. Every command reads every setting from the
// environment, but shows and accepts as flags only the ones it uses.
type scope uint8

const (
	// scopeStore: every command that opens the store (serve and migrate too).
	scopeStore scope = 1 << iota
	// scopeKeys: commands that rotate signing keys (serve, migrate, keys rotate).
	scopeKeys
	// scopePasswords: commands that hash passwords (serve, migrate, users create and set-password).
	scopePasswords
	// scopeServer: serve, and migrate so that a deployment can run migrate
	// with serve's arguments.
	scopeServer

	scopeServe = scopeStore | scopeKeys | scopePasswords | scopeServer
)

// kind is how a setting's value is parsed.
type kind uint8

const (
	kindString kind = iota
	kindBool
	kindDuration
	kindInt
	kindRate
)

func (k kind) String() string {
	return [...]string{"string", "bool", "duration", "int", "rate"}[k]
}

// settings is the one list of configuration values; flags, environment and
// the README are all derived from it.
var settings = []setting{
	{"addr", "GATEHOUSE_ADDR", ":8080", "listen address", scopeServer, kindString},
	{"max-connections", "GATEHOUSE_MAX_CONNECTIONS", "4096", "client connections open at once (1–1048576); more wait in the kernel's accept queue until one closes", scopeServer, kindInt},
	{"issuer", "GATEHOUSE_ISSUER", "", "issuer URL (absolute; https in production); empty means http://localhost:PORT with the port of --addr", scopeServer, kindString},
	{"data-dir", "GATEHOUSE_DATA_DIR", "./data", "directory of the embedded SQLite store and the generated secret", scopeStore, kindString},
	{"database-url", "DATABASE_URL", "", "PostgreSQL URL (postgres://…); empty selects the embedded SQLite store", scopeStore, kindString},
	{"db-connect-timeout", "GATEHOUSE_DB_CONNECT_TIMEOUT", "5s", "how long to wait for the database at start", scopeStore, kindDuration},
	{"secret", "GATEHOUSE_SECRET", "", "master secret (≥ 32 characters); required with DATABASE_URL, generated into the data dir otherwise", scopeStore, kindString},
	{"signing-alg", "GATEHOUSE_SIGNING_ALG", "RS256", "default token signing algorithm, for clients that choose none: RS256, ES256 or EdDSA", scopeStore, kindString},
	{"key-rotation-period", "GATEHOUSE_KEY_ROTATION_PERIOD", "720h", "how long a signing key signs before automatic rotation", scopeKeys, kindDuration},
	{"access-token-ttl", "GATEHOUSE_ACCESS_TOKEN_TTL", "1h", "access token lifetime", scopeKeys, kindDuration},
	{"access-token-audience", "GATEHOUSE_ACCESS_TOKEN_AUDIENCE", "", "aud of access tokens whose request names no resource and whose client registered none; empty means the issuer", scopeServer, kindString},
	{"id-token-ttl", "GATEHOUSE_ID_TOKEN_TTL", "1h", "ID token lifetime", scopeKeys, kindDuration},
	{"refresh-token-ttl", "GATEHOUSE_REFRESH_TOKEN_TTL", "720h", "absolute lifetime of a sign-in's refresh tokens", scopeServer, kindDuration},
	{"refresh-reuse-grace", "GATEHOUSE_REFRESH_REUSE_GRACE", "10s", "window in which a just-rotated refresh token gets the same successor again (0 disables)", scopeServer, kindDuration},
	{"session-idle", "GATEHOUSE_SESSION_IDLE", "24h", "SSO session idle timeout", scopeServer, kindDuration},
	{"session-max", "GATEHOUSE_SESSION_MAX", "720h", "SSO session absolute lifetime", scopeServer, kindDuration},
	{"password-hasher", "GATEHOUSE_PASSWORD_HASHER", "argon2id", "password hash for new and rehashed passwords: argon2id or bcrypt", scopePasswords, kindString},
	{"bcrypt-cost", "GATEHOUSE_BCRYPT_COST", "12", "bcrypt cost when the hasher is bcrypt (10–31)", scopePasswords, kindInt},
	{"password-hash-concurrency", "GATEHOUSE_PASSWORD_HASH_CONCURRENCY", "0", "password hashes computed at once (0–256); 0 means as many as the processors with low-priority hashing, else one fewer than the processors Go uses (GOMAXPROCS), at least 1, so that a flood of sign-ins leaves a processor to token requests", scopeServer, kindInt},
	{"password-hash-priority", "GATEHOUSE_PASSWORD_HASH_PRIORITY", "auto", "auto: low on Linux unless GOMAXPROCS is below the machine's processors (a CPU quota, or set by hand), else normal; low (Linux): hashes run on threads of the lowest operating-system priority, as many as the processors by default, and Go gets that many more processors to schedule on, so that sign-ins use every core when nothing else wants it and token requests go first when something does; normal: hashes run beside requests, on one processor fewer than Go has", scopeServer, kindString},
	{"password-hash-max-wait", "GATEHOUSE_PASSWORD_HASH_MAX_WAIT", "3s", "longest wait of a sign-in for a free hashing slot (1ms–1m); past it, or with 64 sign-ins per slot already waiting, the sign-in is answered 503 with Retry-After and counts nothing against the address", scopeServer, kindDuration},
	{"clients-file", "GATEHOUSE_CLIENTS_FILE", "", "JSON file of clients to create or update at start", scopeServer, kindString},
	{"tls-cert", "GATEHOUSE_TLS_CERT", "", "TLS certificate file (serve TLS directly)", scopeServer, kindString},
	{"tls-key", "GATEHOUSE_TLS_KEY", "", "TLS private key file", scopeServer, kindString},
	{"product-name", "GATEHOUSE_PRODUCT_NAME", "Gatehouse", "name shown in the sign-in pages and emails", scopeServer, kindString},
	{"logo-url", "GATEHOUSE_LOGO_URL", "", "logo image URL for the sign-in pages (https or a path on this server); empty uses the built-in logo", scopeServer, kindString},
	{"brand-color", "GATEHOUSE_BRAND_COLOR", "#1f5fbf", "primary colour of the sign-in pages (#rrggbb)", scopeServer, kindString},
	{"require-verified-email", "GATEHOUSE_REQUIRE_VERIFIED_EMAIL", "false", "refuse sign-in until the email address is verified", scopeServer, kindBool},
	{"password-min-length", "GATEHOUSE_PASSWORD_MIN_LENGTH", "8", "minimum password length (8–128)", scopePasswords, kindInt},
	{"password-require-upper", "GATEHOUSE_PASSWORD_REQUIRE_UPPER", "true", "passwords need an upper-case letter", scopePasswords, kindBool},
	{"password-require-digit", "GATEHOUSE_PASSWORD_REQUIRE_DIGIT", "true", "passwords need a digit", scopePasswords, kindBool},
	{"password-check-common", "GATEHOUSE_PASSWORD_CHECK_COMMON", "true", "refuse passwords on the bundled list of common passwords", scopePasswords, kindBool},
	{"lockout-threshold", "GATEHOUSE_LOCKOUT_THRESHOLD", "5", "consecutive failed sign-ins (per email) that lock it", scopeServer, kindInt},
	{"lockout-duration", "GATEHOUSE_LOCKOUT_DURATION", "15m", "how long a lock lasts", scopeServer, kindDuration},
	{"rate-login-email", "GATEHOUSE_RATE_LOGIN_EMAIL", "10/1m", "sign-in attempts per email (N/period)", scopeServer, kindRate},
	{"rate-login-ip", "GATEHOUSE_RATE_LOGIN_IP", "30/1m", "sign-in attempts per client IP", scopeServer, kindRate},
	{"rate-register-ip", "GATEHOUSE_RATE_REGISTER_IP", "10/1h", "registrations per client IP", scopeServer, kindRate},
	{"rate-forgot-email", "GATEHOUSE_RATE_FORGOT_EMAIL", "5/1h", "password-reset requests per email", scopeServer, kindRate},
	{"rate-forgot-ip", "GATEHOUSE_RATE_FORGOT_IP", "20/1h", "password-reset requests per client IP", scopeServer, kindRate},
	{"rate-resend-email", "GATEHOUSE_RATE_RESEND_EMAIL", "5/1h", "verification resends per email", scopeServer, kindRate},
	{"rate-resend-ip", "GATEHOUSE_RATE_RESEND_IP", "20/1h", "verification resends per client IP", scopeServer, kindRate},
	{"trusted-proxies", "GATEHOUSE_TRUSTED_PROXIES", "", "comma-separated CIDRs of proxies whose X-Forwarded-For is trusted", scopeServer, kindString},
	{"redis-url", "REDIS_URL", "", "Redis URL for rate limits shared by all instances; empty keeps them in memory", scopeServer, kindString},
	{"smtp-url", "SMTP_URL", "", "smtp://user:pass@host:port[?tls=opportunistic|starttls|implicit]; empty writes mail to the log", scopeServer, kindString},
	{"mail-from", "GATEHOUSE_MAIL_FROM", "Gatehouse <no-reply@localhost>", "sender address of emails", scopeServer, kindString},
	{"demo-client", "GATEHOUSE_DEMO_CLIENT", "", "create the demo client gatehouse-demo on an empty store: true, false, or empty for only on the embedded store with a loopback issuer", scopeServer, kindBool},
	{"log-level", "GATEHOUSE_LOG_LEVEL", "", "debug, info, warn or error; empty means info for serve and warn for the other commands", scopeStore, kindString},
	{"log-format", "GATEHOUSE_LOG_FORMAT", "text", "text or json", scopeStore, kindString},
	{"audit-retention", "GATEHOUSE_AUDIT_RETENTION", "2160h", "how long audit events are kept (0 keeps them forever)", scopeServer, kindDuration},
	{"metrics-addr", "GATEHOUSE_METRICS_ADDR", "127.0.0.1:9464", "listen address of the Prometheus /metrics endpoint (host:port); off (or an empty --metrics-addr) disables it", scopeServer, kindString},
	{"pprof", "GATEHOUSE_PPROF", "false", "serve Go's /debug/pprof/ profiles on the metrics listener", scopeServer, kindBool},
	{"upstreams-file", "GATEHOUSE_UPSTREAMS_FILE", "", "JSON file of upstream identity providers (GitHub, OpenID Connect) users may sign in through", scopeServer, kindString},
	{"github-client-id", "GATEHOUSE_GITHUB_CLIENT_ID", "", "client ID of a GitHub OAuth app: enables \"Continue with GitHub\" (upstream id github)", scopeServer, kindString},
	{"github-client-secret", "GATEHOUSE_GITHUB_CLIENT_SECRET", "", "client secret of that GitHub OAuth app", scopeServer, kindString},
	{"github-client-secret-file", "GATEHOUSE_GITHUB_CLIENT_SECRET_FILE", "", "file holding the GitHub client secret (instead of GATEHOUSE_GITHUB_CLIENT_SECRET)", scopeServer, kindString},
	{"github-url", "GATEHOUSE_GITHUB_URL", "https://github.com", "GitHub's address; a GitHub Enterprise Server URL uses its API at <url>/api/v3", scopeServer, kindString},
	{"github-allowed-orgs", "GATEHOUSE_GITHUB_ALLOWED_ORGS", "", "comma-separated GitHub organisations whose members alone may sign in with GitHub (asks GitHub for read:org)", scopeServer, kindString},
	{"mfa-required-roles", "GATEHOUSE_MFA_REQUIRED_ROLES", "", "comma-separated roles whose users must sign in with two factors (and enrol one at their next sign-in), e.g. ADMIN", scopeServer, kindString},
	{"admin-role", "GATEHOUSE_ADMIN_ROLE", "ADMIN", "the role whose users administer Gatehouse (admin console, and user tokens of the admin API); another role, e.g. IDP_ADMIN, keeps that apart from being an admin in the apps", scopeServer, kindString},
	{"webauthn-rp-id", "GATEHOUSE_WEBAUTHN_RP_ID", "", "WebAuthn relying-party ID for passkeys: empty means the issuer's host; a parent domain lets passkeys work across its subdomains", scopeServer, kindString},
	{"upstream-signup", "GATEHOUSE_UPSTREAM_SIGNUP", "true", "an unknown upstream identity with a verified email and no account creates one (per upstream: \"signup\")", scopeServer, kindBool},
	{"require-pkce", "GATEHOUSE_REQUIRE_PKCE", "false", "every client, confidential ones too, must use PKCE (S256) at /authorize, as OAuth 2.1 and FAPI 2.0 ask; public clients always must", scopeServer, kindBool},
	// Pushed authorization requests (RFC 9126).
	{"require-par", "GATEHOUSE_REQUIRE_PAR", "false", "every client must push its authorization requests to /oauth/par (RFC 9126); per client: --require-par", scopeServer, kindBool},
	// Device flow (RFC 8628).
	{"device-code-ttl", "GATEHOUSE_DEVICE_CODE_TTL", "10m", "how long a device flow's device and user codes live (1m–1h)", scopeServer, kindDuration},
	{"device-poll-interval", "GATEHOUSE_DEVICE_POLL_INTERVAL", "5s", "least time between a device's polls of the token endpoint (whole seconds, 1s–60s); polling faster gets slow_down", scopeServer, kindDuration},
	{"rate-device-code-ip", "GATEHOUSE_RATE_DEVICE_CODE_IP", "20/1h", "device codes entered at /device per client IP, right or wrong", scopeServer, kindRate},
	{"rate-device-code-session", "GATEHOUSE_RATE_DEVICE_CODE_SESSION", "10/10m", "device codes entered at /device per sign-in session", scopeServer, kindRate},
	{"rate-device-code-all", "GATEHOUSE_RATE_DEVICE_CODE_ALL", "60/1m", "device codes entered at /device by everyone together (bounds guessing however many addresses try)", scopeServer, kindRate},
	// DPoP (RFC 9449).
	{"dpop-nonce", "GATEHOUSE_DPOP_NONCE", "false", "DPoP proofs must carry a server nonce (use_dpop_nonce, DPoP-Nonce header): a proof made in advance is refused", scopeServer, kindBool},
	// private_key_jwt (RFC 7523).
	{"client-assertion-audience", "GATEHOUSE_CLIENT_ASSERTION_AUDIENCE", "issuer-or-endpoint", "what a private_key_jwt client assertion's aud may be: issuer-or-endpoint (the issuer, or the token, PAR or device authorization endpoint URL, alone or in an array) or issuer (only the issuer, as a single string: FAPI 2.0, safe from audience injection)", scopeServer, kindString},
	{"rate-client-registration-ip", "GATEHOUSE_RATE_CLIENT_REGISTRATION_IP", "20/1h", "dynamic client registrations per client IP (refused ones count)", scopeServer, kindRate},
	{"client-registration", "GATEHOUSE_CLIENT_REGISTRATION", "off", "dynamic client registration at /oauth/register (RFC 7591/7592): off; token (with an initial access token from `clients registration-token create`); loopback (also without a token for clients whose every URI is http on a loopback address, for development)", scopeServer, kindString},
}

// config is the parsed, validated configuration.
type config struct {
	Addr              string
	MaxConnections    int
	Issuer            string
	IssuerFromAddr    bool // no issuer was set: it follows the port the server listens on
	DataDir           string
	DatabaseURL       string
	DBConnectTimeout  time.Duration
	Secret            string
	SigningAlg        string
	KeyRotation       time.Duration
	AccessTokenTTL    time.Duration
	AccessTokenAud    string
	IDTokenTTL        time.Duration
	RefreshTokenTTL   time.Duration
	RefreshReuseGrace time.Duration
	SessionIdle       time.Duration
	SessionMax        time.Duration
	PasswordHasher    string
	BcryptCost        int
	HashConcurrency   int           // 0: password.DefaultConcurrency
	HashMaxWait       time.Duration // bound on the wait for a hashing slot
	HashLowPriority   bool          // GATEHOUSE_PASSWORD_HASH_PRIORITY=low
	ClientsFile       string
	TLSCert           string
	TLSKey            string
	ProductName       string
	LogoURL           string
	BrandColor        string
	RequireVerified   bool
	PasswordMinLength int
	PasswordUpper     bool
	PasswordDigit     bool
	PasswordCommon    bool
	LockoutThreshold  int
	LockoutDuration   time.Duration
	RateLoginEmail    rate
	RateLoginIP       rate
	RateRegisterIP    rate
	RateForgotEmail   rate
	RateForgotIP      rate
	RateResendEmail   rate
	RateResendIP      rate
	TrustedProxies    string
	RedisURL          string
	SMTPURL           string
	MailFrom          string
	DemoClient        *bool  // nil: only on the embedded store with a loopback issuer
	LogLevel          string // "" until setup picks the command's default
	LogFormat         string

	AuditRetention time.Duration
	MetricsAddr    string // "" when disabled
	// MetricsAddrSet: the metrics address was chosen (flag or environment),
	// not the default; a busy default port only costs the metrics.
	MetricsAddrSet bool
	PProf          bool

	UpstreamsFile          string
	GitHubClientID         string
	GitHubClientSecret     string
	GitHubClientSecretFile string
	GitHubURL              string
	GitHubAllowedOrgs      string
	UpstreamSignup         bool
	MFARequiredRoles       []string
	AdminRole              string
	WebAuthnRPID           string
	// Device flow (RFC 8628).
	DeviceCodeTTL         time.Duration
	DevicePollInterval    time.Duration
	RateDeviceCodeIP      rate
	RateDeviceCodeSession rate
	RateDeviceCodeAll     rate

	DPoPNonce bool // DPoP (RFC 9449)
	// StrictAssertionAudience: a client assertion's aud must be the issuer
	// alone (GATEHOUSE_CLIENT_ASSERTION_AUDIENCE=issuer).
	StrictAssertionAudience bool
	// ClientRegistration: who may register clients (dynamic client registration).
	ClientRegistration registration.Mode
	RateClientRegIP    rate
	// Upstreams is the validated list from the upstreams file and the
	// GitHub settings (checkBeforeStart fills it).
	Upstreams []upstream.Config

	// MailLinks, when set, is where the log mail sink also writes each link
	// on a line of its own (serve: stderr, with text logs). Not a setting.
	MailLinks io.Writer

	// RequirePAR: every client must use pushed authorization requests (RFC 9126).
	RequirePAR bool
	// RequirePKCE: every client, not only public ones, must send a PKCE
	// challenge.
	RequirePKCE bool
}

// addSettingFlags adds the settings of scope sc to a command's flags. The
// flag's own default stays unset: a flag only wins when given (see loadConfig).
func addSettingFlags(fs *pflag.FlagSet, sc scope) {
	for _, s := range settings {
		if s.scope&sc != 0 {
			addSettingFlag(fs, s)
		}
	}
}

func addSettingFlag(fs *pflag.FlagSet, s setting) {
	f := fs.VarPF(&settingValue{kind: s.kind}, s.flag, "", s.usage+" (env "+s.env+")")
	f.DefValue = s.def
	if s.kind == kindBool {
		f.NoOptDefVal = "true" // --require-verified-email alone means true
	}
}

// settingValue holds a flag's text; loadConfig parses it with the setting's
// kind, so that a flag and its environment variable fail the same way.
type settingValue struct {
	v    string
	kind kind
}

func (v *settingValue) String() string     { return v.v }
func (v *settingValue) Set(s string) error { v.v = s; return nil }
func (v *settingValue) Type() string       { return v.kind.String() }

// loadConfig resolves every setting (flag, then environment, then default)
// and validates it. An error names the setting, so a bad value stops start-up
// with one line that says what to fix.
func loadConfig(fs *pflag.FlagSet, getenv func(string) string) (*config, error) {
	raw := make(map[string]string, len(settings))
	names := make(map[string]string, len(settings))
	for _, s := range settings {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		if f := fs.Lookup(s.flag); f != nil && f.Changed {
			v = f.Value.String()
		}
		raw[s.flag] = strings.TrimSpace(v)
		names[s.flag] = s.env
	}
	p := parser{raw: raw, names: names, read: make(map[string]bool, len(settings))}
	c := &config{
		Addr:              p.str("addr"),
		MaxConnections:    p.intRange("max-connections", 1, 1<<20),
		Issuer:            p.str("issuer"),
		DataDir:           p.str("data-dir"),
		DatabaseURL:       p.str("database-url"),
		DBConnectTimeout:  p.duration("db-connect-timeout", time.Second),
		Secret:            p.str("secret"),
		SigningAlg:        p.oneOf("signing-alg", "RS256", "ES256", "EdDSA"),
		KeyRotation:       p.duration("key-rotation-period", time.Hour),
		AccessTokenTTL:    p.duration("access-token-ttl", time.Minute),
		AccessTokenAud:    p.str("access-token-audience"),
		IDTokenTTL:        p.duration("id-token-ttl", time.Minute),
		RefreshTokenTTL:   p.duration("refresh-token-ttl", time.Minute),
		RefreshReuseGrace: p.duration("refresh-reuse-grace", 0),
		SessionIdle:       p.duration("session-idle", time.Minute),
		SessionMax:        p.duration("session-max", time.Minute),
		PasswordHasher:    p.oneOf("password-hasher", "argon2id", "bcrypt"),
		BcryptCost:        p.intRange("bcrypt-cost", 10, 31),
		HashConcurrency:   p.intRange("password-hash-concurrency", 0, 256),
		HashMaxWait:       p.durationRange("password-hash-max-wait", time.Millisecond, time.Minute),
		HashLowPriority:   lowPriorityHashing(p.oneOf("password-hash-priority", "normal", "low", "auto")),
		ClientsFile:       p.str("clients-file"),
		TLSCert:           p.str("tls-cert"),
		TLSKey:            p.str("tls-key"),
		ProductName:       p.str("product-name"),
		LogoURL:           p.str("logo-url"),
		BrandColor:        p.str("brand-color"),
		RequireVerified:   p.boolean("require-verified-email"),
		PasswordMinLength: p.intRange("password-min-length", 8, 128),
		PasswordUpper:     p.boolean("password-require-upper"),
		PasswordDigit:     p.boolean("password-require-digit"),
		PasswordCommon:    p.boolean("password-check-common"),
		LockoutThreshold:  p.intRange("lockout-threshold", 1, 100),
		LockoutDuration:   p.duration("lockout-duration", time.Second),
		RateLoginEmail:    p.rate("rate-login-email"),
		RateLoginIP:       p.rate("rate-login-ip"),
		RateRegisterIP:    p.rate("rate-register-ip"),
		RateForgotEmail:   p.rate("rate-forgot-email"),
		RateForgotIP:      p.rate("rate-forgot-ip"),
		RateResendEmail:   p.rate("rate-resend-email"),
		RateResendIP:      p.rate("rate-resend-ip"),
		TrustedProxies:    p.str("trusted-proxies"),
		RedisURL:          p.str("redis-url"),
		SMTPURL:           p.str("smtp-url"),
		MailFrom:          p.str("mail-from"),
		DemoClient:        p.optBoolean("demo-client"),
		LogLevel:          p.oneOf("log-level", "", "debug", "info", "warn", "error"),
		LogFormat:         p.oneOf("log-format", "text", "json"),
		MetricsAddr:       p.listenAddr("metrics-addr"),
		MetricsAddrSet:    p.raw["metrics-addr"] != settingDefault("metrics-addr"),
		PProf:             p.boolean("pprof"),
		AuditRetention:    p.duration("audit-retention", 0),

		UpstreamsFile:          p.str("upstreams-file"),
		GitHubClientID:         p.str("github-client-id"),
		GitHubClientSecret:     p.str("github-client-secret"),
		GitHubClientSecretFile: p.str("github-client-secret-file"),
		GitHubURL:              p.str("github-url"),
		GitHubAllowedOrgs:      p.str("github-allowed-orgs"),
		UpstreamSignup:         p.boolean("upstream-signup"),
		WebAuthnRPID:           p.str("webauthn-rp-id"),
		AdminRole:              p.str("admin-role"),
		RequirePAR:             p.boolean("require-par"),
		RequirePKCE:            p.boolean("require-pkce"),

		DeviceCodeTTL:           p.duration("device-code-ttl", time.Minute),
		DevicePollInterval:      p.duration("device-poll-interval", time.Second),
		RateDeviceCodeIP:        p.rate("rate-device-code-ip"),
		RateDeviceCodeSession:   p.rate("rate-device-code-session"),
		RateDeviceCodeAll:       p.rate("rate-device-code-all"),
		DPoPNonce:               p.boolean("dpop-nonce"),
		StrictAssertionAudience: p.oneOf("client-assertion-audience", "issuer-or-endpoint", "issuer") == "issuer",
		ClientRegistration:      registration.Mode(p.oneOf("client-registration", registration.Modes()...)),
		RateClientRegIP:         p.rate("rate-client-registration-ip"),
	}
	for role := range strings.SplitSeq(p.str("mfa-required-roles"), ",") {
		if role = strings.TrimSpace(role); role != "" {
			c.MFARequiredRoles = append(c.MFARequiredRoles, role)
		}
	}
	if p.err == nil {
		p.checkAllRead()
	}
	if p.err != nil {
		return nil, p.err
	}
	_, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return nil, fmt.Errorf("GATEHOUSE_ADDR (--addr): %q is not host:port or :port", c.Addr)
	}
	if c.Issuer == "" {
		// `serve --addr :8090` alone must not announce port 8080.
		c.Issuer, c.IssuerFromAddr = "http://localhost:"+port, true
	}
	iss, err := validateIssuer(c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("GATEHOUSE_ISSUER (--issuer): %w", err)
	}
	c.Issuer = iss
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return nil, errors.New("DATABASE_URL (--database-url): must be a postgres:// or postgresql:// URL")
	}
	if c.DatabaseURL != "" && c.Secret == "" {
		return nil, errors.New("GATEHOUSE_SECRET (--secret): required when DATABASE_URL is set, so that every instance can decrypt the same keys and tokens")
	}
	if c.Secret != "" && len(c.Secret) < 32 {
		return nil, errors.New("GATEHOUSE_SECRET (--secret): must be at least 32 characters")
	}
	if c.AccessTokenAud != "" {
		if u, err := url.Parse(c.AccessTokenAud); err != nil || !u.IsAbs() || u.Fragment != "" {
			return nil, fmt.Errorf("GATEHOUSE_ACCESS_TOKEN_AUDIENCE (--access-token-audience): %q must be an absolute URI without a fragment", c.AccessTokenAud)
		}
	}
	if !brandColor.MatchString(c.BrandColor) {
		return nil, fmt.Errorf("GATEHOUSE_BRAND_COLOR (--brand-color): %q is not a colour such as #1f5fbf", c.BrandColor)
	}
	if c.LogoURL != "" && !strings.HasPrefix(c.LogoURL, "https://") && !(strings.HasPrefix(c.LogoURL, "/") && !strings.HasPrefix(c.LogoURL, "//")) {
		return nil, fmt.Errorf("GATEHOUSE_LOGO_URL (--logo-url): %q must be an https:// URL or a path on this server", c.LogoURL)
	}
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") && !strings.HasPrefix(c.RedisURL, "unix://") {
		return nil, errors.New("REDIS_URL (--redis-url): must be a redis://, rediss:// or unix:// URL")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, errors.New("GATEHOUSE_TLS_CERT and GATEHOUSE_TLS_KEY: set both or neither")
	}
	if err := c.checkBeforeStart(getenv); err != nil {
		return nil, err
	}
	if c.PProf && c.MetricsAddr == "" {
		return nil, errors.New("GATEHOUSE_PPROF (--pprof): needs the metrics listener (GATEHOUSE_METRICS_ADDR)")
	}
	if c.DeviceCodeTTL > time.Hour {
		return nil, errors.New("GATEHOUSE_DEVICE_CODE_TTL (--device-code-ttl): at most 1h (a user code is short; a long life gives guessing time)")
	}
	if c.DevicePollInterval > time.Minute || c.DevicePollInterval%time.Second != 0 {
		return nil, errors.New("GATEHOUSE_DEVICE_POLL_INTERVAL (--device-poll-interval): whole seconds, at most 60s")
	}
	if c.SessionIdle > c.SessionMax {
		return nil, errors.New("GATEHOUSE_SESSION_IDLE (--session-idle): must not exceed GATEHOUSE_SESSION_MAX")
	}
	for _, role := range c.MFARequiredRoles {
		if !admin.ValidRole(role) {
			return nil, fmt.Errorf("GATEHOUSE_MFA_REQUIRED_ROLES (--mfa-required-roles): %q is not a role (upper case, such as ADMIN)", role)
		}
	}
	if !admin.ValidRole(c.AdminRole) {
		return nil, fmt.Errorf("GATEHOUSE_ADMIN_ROLE (--admin-role): %q is not a role (upper case, such as ADMIN)", c.AdminRole)
	}
	if c.WebAuthnRPID != "" {
		if _, err := c.webAuthn(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// webAuthn builds the passkey ceremonies for the issuer. With the default
// RP ID (the issuer's host) an issuer WebAuthn cannot serve (an IP address)
// just has no passkeys (nil, nil); an RP ID that was set explicitly and does
// not fit is an error naming the setting.
func (c *config) webAuthn() (*mfa.WebAuthn, error) {
	w, err := mfa.NewWebAuthn(mfa.WebAuthnConfig{Issuer: c.Issuer, RPID: c.WebAuthnRPID, RPDisplayName: c.ProductName})
	if err != nil {
		if c.WebAuthnRPID == "" {
			return nil, nil
		}
		msg := err.Error()
		if !strings.Contains(msg, "GATEHOUSE_WEBAUTHN_RP_ID") {
			msg = "GATEHOUSE_WEBAUTHN_RP_ID (--webauthn-rp-id): " + msg
		}
		return nil, errors.New(msg)
	}
	return w, nil
}

var brandColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// validateIssuer accepts an absolute http(s) URL without query or fragment and
// returns it without a trailing slash (OIDC Discovery §4 appends the path).
func validateIssuer(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q must use https (or http for local testing)", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q must not contain a query, fragment or user info", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// rate is a rate limit: Limit events per Period.
type rate struct {
	Limit  int
	Period time.Duration
}

// parser converts raw setting values, keeping the first error. Each accessor
// checks that the setting is declared with its kind, and checkAllRead that
// every declared setting was read: a misspelt name fails every test that
// loads a configuration.
type parser struct {
	raw   map[string]string
	names map[string]string
	read  map[string]bool
	err   error
}

// get returns the raw value of a setting declared with kind k.
func (p *parser) get(flag string, k kind) string {
	env, ok := p.names[flag]
	if !ok {
		p.internal("setting %q is read but not declared in settings", flag)
		return ""
	}
	for _, s := range settings {
		if s.flag == flag && s.kind != k {
			p.internal("setting %s is declared as %s but read as %s", env, s.kind, k)
		}
	}
	if p.read == nil {
		p.read = make(map[string]bool)
	}
	p.read[flag] = true
	return p.raw[flag]
}

func (p *parser) checkAllRead() {
	for _, s := range settings {
		if !p.read[s.flag] {
			p.internal("setting %s is declared but never read", s.env)
		}
	}
}

// internal records a mistake in this program (not in the configuration).
func (p *parser) internal(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("internal error: "+format, args...)
	}
}

func (p *parser) fail(flag, format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%s (--%s): %s", p.names[flag], flag, fmt.Sprintf(format, args...))
	}
}

func (p *parser) str(flag string) string { return p.get(flag, kindString) }

func (p *parser) duration(flag string, min time.Duration) time.Duration {
	v := p.get(flag, kindDuration)
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail(flag, "%q is not a duration (examples: 30s, 15m, 24h)", v)
		return 0
	}
	if d < min {
		p.fail(flag, "%s is shorter than the minimum %s", d, min)
	}
	return d
}

// lowPriorityHashing decides GATEHOUSE_PASSWORD_HASH_PRIORITY. auto stays
// normal under a CPU quota (Go sets GOMAXPROCS to it): hashing threads on
// processors beyond it would use the quota up in bursts and get the whole
// process throttled, token requests included.
func lowPriorityHashing(v string) bool {
	switch v {
	case "low":
		return true
	case "auto":
		return password.LowPrioritySupported && os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) >= runtime.NumCPU()
	}
	return false
}

// durationRange is a duration from min to max.
func (p *parser) durationRange(flag string, min, max time.Duration) time.Duration {
	d := p.duration(flag, min)
	if d > max {
		p.fail(flag, "%s is longer than the maximum %s", d, max)
	}
	return d
}

func (p *parser) oneOf(flag string, allowed ...string) string {
	v := p.get(flag, kindString)
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	named := slices.DeleteFunc(slices.Clone(allowed), func(a string) bool { return a == "" })
	p.fail(flag, "%q is not one of %s", v, strings.Join(named, ", "))
	return ""
}

func (p *parser) intRange(flag string, lo, hi int) int {
	v := p.get(flag, kindInt)
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(flag, "%q must be a whole number from %d to %d", v, lo, hi)
	}
	return n
}

func (p *parser) boolean(flag string) bool {
	v := p.get(flag, kindBool)
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(flag, "%q is not true or false", v)
	}
	return b
}

// optBoolean is a boolean whose empty value means "decide from the rest".
func (p *parser) optBoolean(flag string) *bool {
	v := p.get(flag, kindBool)
	if v == "" {
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(flag, "%q is not true, false or empty", v)
	}
	return &b
}

// listenAddr parses an optional host:port; "" or "off" means none.
func (p *parser) listenAddr(flag string) string {
	v := p.get(flag, kindString)
	if v == "" || strings.EqualFold(v, "off") {
		return ""
	}
	host, port, err := net.SplitHostPort(v)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 || strings.ContainsAny(host, " /") {
		p.fail(flag, "%q is not a listen address such as 127.0.0.1:9464 or :9464", v)
		return ""
	}
	return v
}

// rate parses "N/period", e.g. "10/1m" or "5/1h".
func (p *parser) rate(flag string) rate {
	v := p.get(flag, kindRate)
	n, per, ok := strings.Cut(v, "/")
	limit, err1 := strconv.Atoi(strings.TrimSpace(n))
	period, err2 := time.ParseDuration(strings.TrimSpace(per))
	// The limiter spends Period/Limit per event; that must not round to zero.
	if !ok || err1 != nil || err2 != nil || limit < 1 || period < time.Second || period/time.Duration(limit) <= 0 {
		p.fail(flag, "%q is not a rate such as 10/1m (at least 1 per at least 1s, at most 1 per ns)", v)
		return rate{}
	}
	return rate{Limit: limit, Period: period}
}

// settingDefault is the declared default of the setting with flag name flag.
func settingDefault(flag string) string {
	for _, s := range settings {
		if s.flag == flag {
			return s.def
		}
	}
	panic("settingDefault: no setting " + flag) // a typo in this package
}

// checkBeforeStart validates the settings that would otherwise fail only
// once the store, the secret and the signing keys exist: a typo must stop
// start-up with one line and leave nothing behind.
func (c *config) checkBeforeStart(getenv func(string) string) error {
	if _, err := ratelimit.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return err // names GATEHOUSE_TRUSTED_PROXIES
	}
	if _, err := mail.NewSender(c.SMTPURL, c.MailFrom, slog.New(slog.DiscardHandler)); err != nil {
		if !strings.Contains(err.Error(), "GATEHOUSE_") && !strings.Contains(err.Error(), "SMTP_URL") {
			err = fmt.Errorf("SMTP_URL (--smtp-url): %w", err)
		}
		return err
	}
	if c.ClientsFile != "" {
		b, err := os.ReadFile(c.ClientsFile)
		if err == nil {
			_, err = parseClientsFile(b, time.Now())
		}
		if err != nil {
			return fmt.Errorf("GATEHOUSE_CLIENTS_FILE (--clients-file): %w", err)
		}
	}
	ups, err := c.loadUpstreams(getenv)
	if err != nil {
		return err
	}
	c.Upstreams = ups
	return nil
}

// loadUpstreams reads the upstreams file and adds the GitHub upstream the
// GATEHOUSE_GITHUB_* settings describe. Errors name the setting, the entry
// and the field.
func (c *config) loadUpstreams(getenv func(string) string) ([]upstream.Config, error) {
	var out []upstream.Config
	if c.UpstreamsFile != "" {
		b, err := os.ReadFile(c.UpstreamsFile)
		if err == nil {
			out, err = upstream.ParseFile(b, upstream.Sources{Getenv: getenv, ReadFile: os.ReadFile})
		}
		if err != nil {
			return nil, fmt.Errorf("GATEHOUSE_UPSTREAMS_FILE (--upstreams-file): %w", err)
		}
	}
	secret := c.GitHubClientSecret
	if c.GitHubClientSecretFile != "" {
		if secret != "" {
			return nil, errors.New("GATEHOUSE_GITHUB_CLIENT_SECRET and GATEHOUSE_GITHUB_CLIENT_SECRET_FILE: set one, not both")
		}
		b, err := os.ReadFile(c.GitHubClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("GATEHOUSE_GITHUB_CLIENT_SECRET_FILE (--github-client-secret-file): %w", err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
	}
	switch {
	case c.GitHubClientID == "" && secret == "":
		if c.GitHubAllowedOrgs != "" {
			return nil, errors.New("GATEHOUSE_GITHUB_ALLOWED_ORGS (--github-allowed-orgs): needs GATEHOUSE_GITHUB_CLIENT_ID and GATEHOUSE_GITHUB_CLIENT_SECRET")
		}
		return out, nil
	case c.GitHubClientID == "":
		return nil, errors.New("GATEHOUSE_GITHUB_CLIENT_ID (--github-client-id): required with a GitHub client secret")
	case secret == "":
		return nil, errors.New("GATEHOUSE_GITHUB_CLIENT_SECRET (--github-client-secret): required with GATEHOUSE_GITHUB_CLIENT_ID (or GATEHOUSE_GITHUB_CLIENT_SECRET_FILE)")
	}
	gh := upstream.GitHubFromSettings(c.GitHubClientID, secret, c.GitHubURL, c.GitHubAllowedOrgs)
	if err := gh.Validate(); err != nil {
		return nil, fmt.Errorf("GATEHOUSE_GITHUB_* settings: %w", err)
	}
	for _, u := range out {
		if u.ID == gh.ID {
			return nil, errors.New(`GATEHOUSE_GITHUB_CLIENT_ID and GATEHOUSE_UPSTREAMS_FILE both define the upstream "github": keep one`)
		}
	}
	return append(out, gh), nil
}
