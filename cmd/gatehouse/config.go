package main

import (
	"errors"
	"fmt"
	"net/url"
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
	{"issuer", "GATEHOUSE_ISSUER", "http://localhost:8080", "issuer URL (absolute; https in production)"},
	{"data-dir", "GATEHOUSE_DATA_DIR", "./data", "directory of the embedded SQLite store and the generated secret"},
	{"database-url", "DATABASE_URL", "", "PostgreSQL URL (postgres://…); empty selects the embedded SQLite store"},
	{"db-connect-timeout", "GATEHOUSE_DB_CONNECT_TIMEOUT", "5s", "how long to wait for the database at start"},
	{"secret", "GATEHOUSE_SECRET", "", "master secret (≥ 32 characters); required with DATABASE_URL, generated into the data dir otherwise"},
	{"signing-alg", "GATEHOUSE_SIGNING_ALG", "RS256", "token signing algorithm: RS256 or ES256"},
	{"key-rotation-period", "GATEHOUSE_KEY_ROTATION_PERIOD", "720h", "how long a signing key signs before automatic rotation"},
	{"access-token-ttl", "GATEHOUSE_ACCESS_TOKEN_TTL", "1h", "access token lifetime"},
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
	{"product-name", "GATEHOUSE_PRODUCT_NAME", "Gatehouse", "name shown in the sign-in pages"},
	{"log-level", "GATEHOUSE_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"log-format", "GATEHOUSE_LOG_FORMAT", "text", "text or json"},
}

// config is the parsed, validated configuration.
type config struct {
	Addr              string
	Issuer            string
	DataDir           string
	DatabaseURL       string
	DBConnectTimeout  time.Duration
	Secret            string
	SigningAlg        string
	KeyRotation       time.Duration
	AccessTokenTTL    time.Duration
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
	LogLevel          string
	LogFormat         string
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
		Issuer:            p.str("issuer"),
		DataDir:           p.str("data-dir"),
		DatabaseURL:       p.str("database-url"),
		DBConnectTimeout:  p.duration("db-connect-timeout", time.Second),
		Secret:            p.str("secret"),
		SigningAlg:        p.oneOf("signing-alg", "RS256", "ES256"),
		KeyRotation:       p.duration("key-rotation-period", time.Hour),
		AccessTokenTTL:    p.duration("access-token-ttl", time.Minute),
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
		LogLevel:          p.oneOf("log-level", "debug", "info", "warn", "error"),
		LogFormat:         p.oneOf("log-format", "text", "json"),
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
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, errors.New("GATEHOUSE_TLS_CERT and GATEHOUSE_TLS_KEY: set both or neither")
	}
	if c.SessionIdle > c.SessionMax {
		return nil, errors.New("GATEHOUSE_SESSION_IDLE (--session-idle): must not exceed GATEHOUSE_SESSION_MAX")
	}
	return c, nil
}

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
