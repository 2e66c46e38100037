package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// setting is one configuration value: an environment variable and a flag of
// the same name, with a default. Every setting is listed in the README table
// (TestREADMEListsEverySetting keeps the two in step).
type setting struct {
	flag  string // --flag
	env   string // environment variable
	def   string
	usage string
}

// settings is the one list of configuration values; flags, environment and
// the README are all derived from it.
var settings = []setting{
	{"addr", "GATEHOUSE_ADDR", ":8080", "listen address"},
	{"max-connections", "GATEHOUSE_MAX_CONNECTIONS", "4096", "client connections open at once (1–1048576); more wait in the kernel's accept queue until one closes"},
	{"issuer", "GATEHOUSE_ISSUER", "http://localhost:8080", "issuer URL (absolute; https in production)"},
	{"data-dir", "GATEHOUSE_DATA_DIR", "./data", "directory of the embedded SQLite store and the generated secret"},
	{"database-url", "DATABASE_URL", "", "PostgreSQL URL (postgres://…); empty selects the embedded SQLite store"},
	{"db-connect-timeout", "GATEHOUSE_DB_CONNECT_TIMEOUT", "5s", "how long to wait for the database at start"},
	{"secret", "GATEHOUSE_SECRET", "", "master secret (≥ 32 characters); required with DATABASE_URL, generated into the data dir otherwise"},
	{"signing-alg", "GATEHOUSE_SIGNING_ALG", "RS256", "token signing algorithm: RS256 or ES256"},
	{"key-rotation-period", "GATEHOUSE_KEY_ROTATION_PERIOD", "720h", "how long a signing key signs before automatic rotation"},
	{"access-token-ttl", "GATEHOUSE_ACCESS_TOKEN_TTL", "1h", "access token lifetime"},
	{"access-token-audience", "GATEHOUSE_ACCESS_TOKEN_AUDIENCE", "", "aud of access tokens whose request names no resource and whose client registered none; empty means the issuer"},
	{"id-token-ttl", "GATEHOUSE_ID_TOKEN_TTL", "1h", "ID token lifetime"},
	{"refresh-token-ttl", "GATEHOUSE_REFRESH_TOKEN_TTL", "720h", "absolute lifetime of a sign-in's refresh tokens"},
	{"refresh-reuse-grace", "GATEHOUSE_REFRESH_REUSE_GRACE", "10s", "window in which a just-rotated refresh token gets the same successor again (0 disables)"},
	{"session-idle", "GATEHOUSE_SESSION_IDLE", "24h", "SSO session idle timeout"},
	{"session-max", "GATEHOUSE_SESSION_MAX", "720h", "SSO session absolute lifetime"},
	{"password-hasher", "GATEHOUSE_PASSWORD_HASHER", "argon2id", "password hash for new and rehashed passwords: argon2id or bcrypt"},
	{"bcrypt-cost", "GATEHOUSE_BCRYPT_COST", "12", "bcrypt cost when the hasher is bcrypt (10–31)"},
	{"clients-file", "GATEHOUSE_CLIENTS_FILE", "", "JSON file of clients to create or update at start"},
	{"tls-cert", "GATEHOUSE_TLS_CERT", "", "TLS certificate file (serve TLS directly)"},
	{"tls-key", "GATEHOUSE_TLS_KEY", "", "TLS private key file"},
	{"product-name", "GATEHOUSE_PRODUCT_NAME", "Gatehouse", "name shown in the sign-in pages and emails"},
	{"logo-url", "GATEHOUSE_LOGO_URL", "", "logo image URL for the sign-in pages (https or a path on this server); empty uses the built-in logo"},
	{"brand-color", "GATEHOUSE_BRAND_COLOR", "#1f5fbf", "primary colour of the sign-in pages (#rrggbb)"},
	{"require-verified-email", "GATEHOUSE_REQUIRE_VERIFIED_EMAIL", "false", "refuse sign-in until the email address is verified"},
	{"password-min-length", "GATEHOUSE_PASSWORD_MIN_LENGTH", "8", "minimum password length (8–128)"},
	{"password-require-upper", "GATEHOUSE_PASSWORD_REQUIRE_UPPER", "true", "passwords need an upper-case letter"},
	{"password-require-digit", "GATEHOUSE_PASSWORD_REQUIRE_DIGIT", "true", "passwords need a digit"},
	{"password-check-common", "GATEHOUSE_PASSWORD_CHECK_COMMON", "true", "refuse passwords on the bundled list of common passwords"},
	{"lockout-threshold", "GATEHOUSE_LOCKOUT_THRESHOLD", "5", "consecutive failed sign-ins (per email) that lock it"},
	{"lockout-duration", "GATEHOUSE_LOCKOUT_DURATION", "15m", "how long a lock lasts"},
	{"rate-login-email", "GATEHOUSE_RATE_LOGIN_EMAIL", "10/1m", "sign-in attempts per email (N/period)"},
	{"rate-login-ip", "GATEHOUSE_RATE_LOGIN_IP", "30/1m", "sign-in attempts per client IP"},
	{"rate-register-ip", "GATEHOUSE_RATE_REGISTER_IP", "10/1h", "registrations per client IP"},
	{"rate-forgot-email", "GATEHOUSE_RATE_FORGOT_EMAIL", "5/1h", "password-reset requests per email"},
	{"rate-forgot-ip", "GATEHOUSE_RATE_FORGOT_IP", "20/1h", "password-reset requests per client IP"},
	{"rate-resend-email", "GATEHOUSE_RATE_RESEND_EMAIL", "5/1h", "verification resends per email"},
	{"rate-resend-ip", "GATEHOUSE_RATE_RESEND_IP", "20/1h", "verification resends per client IP"},
	{"trusted-proxies", "GATEHOUSE_TRUSTED_PROXIES", "", "comma-separated CIDRs of proxies whose X-Forwarded-For is trusted"},
	{"redis-url", "REDIS_URL", "", "Redis URL for rate limits shared by all instances; empty keeps them in memory"},
	{"smtp-url", "SMTP_URL", "", "smtp://user:pass@host:port[?tls=opportunistic|starttls|implicit]; empty writes mail to the log"},
	{"mail-from", "GATEHOUSE_MAIL_FROM", "Gatehouse <no-reply@localhost>", "sender address of emails"},
	{"log-level", "GATEHOUSE_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"log-format", "GATEHOUSE_LOG_FORMAT", "text", "text or json"},
	{"metrics-addr", "GATEHOUSE_METRICS_ADDR", "127.0.0.1:9464", "listen address of the Prometheus /metrics endpoint (host:port); off (or an empty --metrics-addr) disables it"},
	{"pprof", "GATEHOUSE_PPROF", "false", "serve Go's /debug/pprof/ profiles on the metrics listener"},
}

// config is the parsed, validated configuration.
type config struct {
	Addr              string
	MaxConnections    int
	Issuer            string
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
	LogLevel          string
	LogFormat         string
	MetricsAddr       string // "" when disabled
	PProf             bool
}

func addSettingFlags(fs *pflag.FlagSet) {
	for _, s := range settings {
		fs.String(s.flag, "", fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def))
	}
}

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
	p := parser{raw: raw, names: names}
	c := &config{
		Addr:              p.str("addr"),
		MaxConnections:    p.intRange("max-connections", 1, 1<<20),
		Issuer:            p.str("issuer"),
		DataDir:           p.str("data-dir"),
		DatabaseURL:       p.str("database-url"),
		DBConnectTimeout:  p.duration("db-connect-timeout", time.Second),
		Secret:            p.str("secret"),
		SigningAlg:        p.oneOf("signing-alg", "RS256", "ES256"),
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
		LogLevel:          p.oneOf("log-level", "debug", "info", "warn", "error"),
		LogFormat:         p.oneOf("log-format", "text", "json"),
		MetricsAddr:       p.listenAddr("metrics-addr"),
		PProf:             p.boolean("pprof"),
	}
	if p.err != nil {
		return nil, p.err
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
	if c.PProf && c.MetricsAddr == "" {
		return nil, errors.New("GATEHOUSE_PPROF (--pprof): needs the metrics listener (GATEHOUSE_METRICS_ADDR)")
	}
	if c.SessionIdle > c.SessionMax {
		return nil, errors.New("GATEHOUSE_SESSION_IDLE (--session-idle): must not exceed GATEHOUSE_SESSION_MAX")
	}
	return c, nil
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

// parser converts raw setting values, keeping the first error.
type parser struct {
	raw   map[string]string
	names map[string]string
	err   error
}

func (p *parser) fail(flag, format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%s (--%s): %s", p.names[flag], flag, fmt.Sprintf(format, args...))
	}
}

func (p *parser) str(flag string) string { return p.raw[flag] }

func (p *parser) duration(flag string, min time.Duration) time.Duration {
	v := p.raw[flag]
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

func (p *parser) oneOf(flag string, allowed ...string) string {
	v := p.raw[flag]
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	p.fail(flag, "%q is not one of %s", v, strings.Join(allowed, ", "))
	return ""
}

func (p *parser) intRange(flag string, lo, hi int) int {
	v := p.raw[flag]
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(flag, "%q must be a whole number from %d to %d", v, lo, hi)
	}
	return n
}

func (p *parser) boolean(flag string) bool {
	v := p.raw[flag]
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(flag, "%q is not true or false", v)
	}
	return b
}

// listenAddr parses an optional host:port; "" or "off" means none.
func (p *parser) listenAddr(flag string) string {
	v := p.raw[flag]
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
	v := p.raw[flag]
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
