package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"

	"github.com/gatehouse-id/gatehouse/internal/adminapi"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/registration"
	"github.com/gatehouse-id/gatehouse/internal/requestid"
	"github.com/gatehouse-id/gatehouse/keys"
	"github.com/gatehouse-id/gatehouse/login"
	"github.com/gatehouse-id/gatehouse/login/console"
	"github.com/gatehouse-id/gatehouse/login/mail"
	"github.com/gatehouse-id/gatehouse/login/password"
	"github.com/gatehouse-id/gatehouse/login/upstream"
	"github.com/gatehouse-id/gatehouse/op"
	"github.com/gatehouse-id/gatehouse/storage"
)

// app is a wired Gatehouse: store, keys, OIDC provider and login UI.
type app struct {
	cfg          *config
	log          *slog.Logger
	store        storage.Store
	keys         *keys.Manager
	provider     *op.Provider
	ui           *login.Handler
	hasher       *password.Hasher
	closeHasher  func()
	mailer       *mail.Mailer
	closeLimiter func() error
	handler      http.Handler
	// metrics serves /metrics (and pprof) on the metrics listener.
	metrics http.Handler
	now     func() time.Time
}

// core opens the store and the key manager: what every command needs.
type core struct {
	store  storage.Store
	secret []byte
	keys   *keys.Manager
	fresh  bool // this command created the store
	log    *slog.Logger
}

func openCore(ctx context.Context, cfg *config, log *slog.Logger) (*core, error) {
	secret, err := loadSecret(cfg, log)
	if err != nil {
		return nil, err
	}
	_, statErr := os.Stat(sqlitePath(cfg))
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	fresh := errors.Is(statErr, fs.ErrNotExist)
	if cfg.DatabaseURL != "" {
		// A PostgreSQL store is new until its first signing key.
		existing, err := st.ListSigningKeys(ctx)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("list signing keys: %w", err)
		}
		fresh = len(existing) == 0
	}
	km, err := keys.NewManager(st, secret, keys.Config{
		Algorithm:         cfg.SigningAlg,
		RotationPeriod:    cfg.KeyRotation,
		RetainAfterRetire: retainAfterRetire(cfg),
	}, log)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	if err := km.Init(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return &core{store: st, secret: secret, keys: km, fresh: fresh, log: log}, nil
}

// retainAfterRetire keeps a retired key published until every token it signed
// has expired, plus slack for clock skew.
func retainAfterRetire(cfg *config) time.Duration {
	return max(cfg.AccessTokenTTL, cfg.IDTokenTTL) + time.Hour
}

// newHasher builds the password hasher; m may be nil (CLI commands).
func newHasher(cfg *config, m *password.Metrics) (*password.Hasher, error) {
	return newHasherWith(password.Config{
		Algorithm: cfg.PasswordHasher, BcryptCost: cfg.BcryptCost,
		Concurrency: cfg.HashConcurrency, MaxWait: cfg.HashMaxWait, Metrics: m,
	})
}

func newHasherWith(pc password.Config) (*password.Hasher, error) {
	h, err := password.New(pc)
	if err != nil {
		return nil, fmt.Errorf("GATEHOUSE_PASSWORD_HASHER: %w", err)
	}
	return h, nil
}

// newServerHasher is newHasher for `serve`. With low-priority hashing it
// raises GOMAXPROCS by the number of hashing threads while they hash (and a
// second after), so that the Go scheduler keeps as many processors as
// before for everything else (a hashing thread holds a processor while it
// computes); the rest of the time the extra processors would cost every
// request CPU. It returns the function that ends the threads and undoes it.
func newServerHasher(cfg *config, m *password.Metrics) (*password.Hasher, func(), error) {
	if !cfg.HashLowPriority {
		h, err := newHasher(cfg, m)
		return h, func() {}, err
	}
	if !password.LowPrioritySupported {
		return nil, nil, errors.New("GATEHOUSE_PASSWORD_HASH_PRIORITY: low is only supported on Linux")
	}
	procs := runtime.GOMAXPROCS(0)
	slots := cfg.HashConcurrency
	if slots == 0 {
		slots = procs // every core, when nothing else wants it
	}
	// Setting GOMAXPROCS stops the runtime from following the CPU quota
	// (Go 1.25); lowering gives that back with SetDefaultGOMAXPROCS unless
	// the operator set GOMAXPROCS, whose value then stands.
	_, procsSet := os.LookupEnv("GOMAXPROCS")
	h, err := newHasherWith(password.Config{
		Algorithm: cfg.PasswordHasher, BcryptCost: cfg.BcryptCost,
		Concurrency: slots, MaxWait: cfg.HashMaxWait, Metrics: m,
		LowPriority: true,
		Busy: func(busy bool) {
			switch {
			case busy:
				runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + slots)
			case procsSet:
				runtime.GOMAXPROCS(procs)
			default:
				runtime.SetDefaultGOMAXPROCS()
			}
		},
	})
	if err != nil {
		return nil, nil, err
	}
	return h, h.Close, nil
}

// newApp wires the server. now is the clock (time.Now outside tests).
func newApp(ctx context.Context, cfg *config, log *slog.Logger, now func() time.Time) (*app, error) {
	c, err := openCore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	a, err := buildApp(ctx, cfg, log, now, c)
	if err != nil {
		c.store.Close()
		return nil, err
	}
	return a, nil
}

func buildApp(ctx context.Context, cfg *config, log *slog.Logger, now func() time.Time, c *core) (*app, error) {
	if cfg.ClientsFile != "" {
		if err := applyClientsFile(ctx, c.store, cfg.ClientsFile, now()); err != nil {
			return nil, fmt.Errorf("GATEHOUSE_CLIENTS_FILE: %w", err)
		}
	}
	// Each package declares its own collectors; they meet only in the
	// registry built here.
	opMetrics, loginMetrics, mailMetrics, hashMetrics, reqMetrics :=
		op.NewMetrics(), login.NewMetrics(), mail.NewMetrics(), password.NewMetrics(), newHTTPMetrics()
	collected := []prometheus.Collector{opMetrics, loginMetrics, mailMetrics, hashMetrics, reqMetrics,
		op.NewLogoutBacklog(c.store)}
	if s, ok := c.store.(interface{ Collector() prometheus.Collector }); ok {
		collected = append(collected, s.Collector())
	}
	reg, err := newRegistry(collected...)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	hasher, closeHasher, err := newServerHasher(cfg, hashMetrics)
	if err != nil {
		return nil, err
	}
	trusted, err := ratelimit.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	sender, err := mail.NewSender(cfg.SMTPURL, cfg.MailFrom, log)
	if err != nil {
		return nil, err
	}
	if cfg.SMTPURL == "" && cfg.MailLinks != nil {
		sender = linkPrinter{sender, cfg.MailLinks}
	}
	limiter, closeLimiter, err := ratelimit.Open(ctx, cfg.RedisURL, log, now)
	if err != nil {
		return nil, err
	}
	emailLogKey := emailPseudonymKey(c.secret)
	mailer := mail.NewMailer(sender, mail.Config{ProductName: cfg.ProductName, Logger: log,
		Metrics: mailMetrics, LogKey: emailLogKey})
	webAuthn, err := cfg.webAuthn()
	if err != nil {
		return nil, err
	}
	provider, err := op.New(op.Config{
		Issuer:                  cfg.Issuer,
		NoPasskeys:              webAuthn == nil,
		CryptoKey:               keys.DeriveKey(c.secret, "opaque-token-encryption"),
		RefreshKey:              keys.DeriveKey(c.secret, "refresh-token-successor"),
		BindingKey:              keys.DeriveKey(c.secret, "auth-request-browser-binding"),
		RequestKey:              keys.DeriveKey(c.secret, "auth-request-sealing"),
		DPoPNonce:               cfg.DPoPNonce,
		StrictAssertionAudience: cfg.StrictAssertionAudience,
		DPoPNonceKey:            keys.DeriveKey(c.secret, "dpop-nonce"),
		AccessTokenTTL:          cfg.AccessTokenTTL,
		AccessTokenAudience:     cfg.AccessTokenAud,
		AdminRole:               cfg.AdminRole,
		IDTokenTTL:              cfg.IDTokenTTL,
		RefreshTokenTTL:         cfg.RefreshTokenTTL,
		RefreshReuseGrace:       cfg.RefreshReuseGrace,
		HintMaxAge:              cfg.SessionMax,
		SessionIdle:             cfg.SessionIdle,
		Now:                     now,
		Logger:                  log,
		ClientIP:                func(r *http.Request) string { return auditIP(r, trusted) },
		Metrics:                 opMetrics,
		RequirePAR:              cfg.RequirePAR,
		RequirePKCE:             cfg.RequirePKCE,
		DeviceCodeTTL:           cfg.DeviceCodeTTL,
		DevicePollInterval:      cfg.DevicePollInterval,
		Limiter:                 limiter,
		RegistrationEndpoint:    registrationEndpoint(cfg),
	}, c.store, c.keys)
	if err != nil {
		closeLimiter()
		return nil, err
	}
	upstreams, err := upstream.NewRegistry(cfg.Upstreams, upstream.Options{Logger: log, Now: now})
	if err != nil {
		return nil, fmt.Errorf("upstreams: %w", err)
	}
	if webAuthn == nil {
		log.Info("passkeys are off: the issuer's host cannot be a WebAuthn relying party (an IP address); use a host name, or set GATEHOUSE_WEBAUTHN_RP_ID")
	}
	ui := login.New(login.Config{
		Issuer:                  cfg.Issuer,
		SessionIdle:             cfg.SessionIdle,
		SessionMax:              cfg.SessionMax,
		CSRFKey:                 keys.DeriveKey(c.secret, "csrf"),
		Now:                     now,
		Logger:                  log,
		ProductName:             cfg.ProductName,
		LogoURL:                 cfg.LogoURL,
		BrandColor:              cfg.BrandColor,
		RequireVerifiedEmail:    cfg.RequireVerified,
		DefaultRole:             "USER",
		PasswordMinLength:       cfg.PasswordMinLength,
		PasswordNoUpperRequired: !cfg.PasswordUpper,
		PasswordNoDigitRequired: !cfg.PasswordDigit,
		PasswordAllowCommon:     !cfg.PasswordCommon,
		LockoutThreshold:        cfg.LockoutThreshold,
		LockoutDuration:         cfg.LockoutDuration,
		SignInPerEmail:          login.RateLimit(cfg.RateLoginEmail),
		SignInPerIP:             login.RateLimit(cfg.RateLoginIP),
		RegisterPerIP:           login.RateLimit(cfg.RateRegisterIP),
		ForgotPerEmail:          login.RateLimit(cfg.RateForgotEmail),
		ForgotPerIP:             login.RateLimit(cfg.RateForgotIP),
		ResendPerEmail:          login.RateLimit(cfg.RateResendEmail),
		ResendPerIP:             login.RateLimit(cfg.RateResendIP),
		TrustedProxies:          trusted,
		Limiter:                 limiter,
		Mailer:                  mailer,
		Metrics:                 loginMetrics,
		EmailLogKey:             emailLogKey,
		Upstreams:               upstreams,
		UpstreamSignup:          cfg.UpstreamSignup,
		UpstreamKey:             keys.DeriveKey(c.secret, "upstream-sealing"),
		MFARequiredRoles:        cfg.MFARequiredRoles,
		AdminRole:               cfg.AdminRole,
		WebAuthn:                webAuthn,
		FactorKey:               keys.DeriveKey(c.secret, "second-factors"),
		DeviceCodePerIP:         login.RateLimit(cfg.RateDeviceCodeIP),
		DeviceCodePerSession:    login.RateLimit(cfg.RateDeviceCodeSession),
		DeviceCodeGlobal:        login.RateLimit(cfg.RateDeviceCodeAll),
	}, c.store, hasher, provider)

	provider.SetPages(ui)        // op's pages in the UI's look, with a way on
	provider.SetSilentSignIn(ui) // one request for an SSO sign-in with nothing to ask
	svc, err := newAdminService(cfg, c, now, hasher, mailer, provider)
	if err != nil {
		closeLimiter()
		return nil, err
	}
	api, err := adminAPI(svc, provider, c.store, limiter, cfg.AdminRole, func(r *http.Request) string { return auditIP(r, trusted) }, now, log)
	if err != nil {
		closeLimiter()
		return nil, err
	}
	con, err := console.New(console.Config{Service: svc, Pages: ui, AdminRole: cfg.AdminRole,
		ClientIP: func(r *http.Request) string { return auditIP(r, trusted) }, Now: now, Logger: log})
	if err != nil {
		closeLimiter()
		return nil, err
	}
	dcr, err := registration.New(registration.Config{Mode: cfg.ClientRegistration, Issuer: cfg.Issuer, Service: svc,
		Store: c.store, Limiter: limiter, PerIP: ratelimit.Rule{Name: registration.DefaultPerIP.Name, Limit: cfg.RateClientRegIP.Limit, Period: cfg.RateClientRegIP.Period},
		ClientIP: func(r *http.Request) string { return auditIP(r, trusted) }, Now: now, Logger: log})
	if err != nil {
		closeLimiter()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(registration.Path, dcr)
	mux.Handle(registration.Path+"/", dcr)
	mux.Handle(adminapi.Prefix+"/", api)
	mux.Handle(console.Prefix, con)
	mux.Handle(console.Prefix+"/", con)
	for _, pattern := range op.Patterns() {
		mux.Handle(pattern, provider)
	}
	mux.Handle("/", ui)
	// A request ID from a trusted proxy is kept, so one ID follows the
	// request through the proxy's log and ours.
	fromProxy := func(r *http.Request) bool { return ratelimit.FromTrustedProxy(r, trusted) }
	return &app{
		cfg: cfg, log: log, store: c.store, keys: c.keys, provider: provider, ui: ui,
		hasher: hasher, closeHasher: closeHasher, mailer: mailer, closeLimiter: closeLimiter, now: now,
		handler: requestid.NewMiddleware(fromProxy)(observe(log, reqMetrics, trusted, mux)),
		metrics: requestid.Middleware(observe(log, reqMetrics, nil, metricsHandler(reg, log, cfg.PProf))),
	}, nil
}

// registrationEndpoint is the dynamic client registration endpoint that
// discovery lists: none when registration is off.
func registrationEndpoint(cfg *config) string {
	if cfg.ClientRegistration == registration.ModeOff {
		return ""
	}
	return cfg.Issuer + registration.Path
}

// serve runs the HTTP server on ln, the metrics server on metricsLn (nil:
// none) and the background jobs until ctx ends, then shuts both servers down
// gracefully.
func (a *app) serve(ctx context.Context, ln, metricsLn net.Listener) error {
	// Starting up leaves garbage an idle server would keep for minutes:
	// goose's migration parser holds 4 MiB buffers in a sync.Pool (12 MiB
	// live after start, measured), and parsing templates and the password
	// list leaves more. Two collections empty the pool (its victim cache
	// survives one) and FreeOSMemory hands the pages back, so an idle
	// Gatehouse is small from its first second (docs/design.md).
	runtime.GC()
	debug.FreeOSMemory()
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	go a.keys.Run(bg, 30*time.Second)
	go a.cleanup(bg, 10*time.Minute)
	go a.provider.RunLogoutDeliveries(bg, 5*time.Second)

	srv := &http.Server{
		Handler: a.handler,
		// A client that opens a connection and sends headers slowly, or
		// never, is dropped after 10 s (slowloris); a request and its body
		// must arrive within 30 s and its answer leave within 30 s.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		// Longer than the usual upstream keep-alive of a reverse proxy (60 s
		// and so on), so the proxy closes an idle connection first and never
		// sends a request on one Gatehouse is closing.
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 32 << 10,
		ErrorLog:       slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	// Each open connection costs a file descriptor: past the cap, further
	// connections wait in the kernel's accept queue instead of exhausting
	// the descriptors the store and Redis need. The cap counts raw TCP
	// connections, so a TLS handshake holds a slot too.
	ln = netutil.LimitListener(ln, a.cfg.MaxConnections)
	if a.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(a.cfg.TLSCert, a.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("GATEHOUSE_TLS_CERT/GATEHOUSE_TLS_KEY: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	servers := []*http.Server{srv}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if metricsLn != nil {
		msrv := &http.Server{
			Handler:           a.metrics,
			ReadHeaderTimeout: 10 * time.Second,
			// A CPU profile or trace runs for ?seconds= (default 30 s).
			WriteTimeout:   2 * time.Minute,
			IdleTimeout:    120 * time.Second,
			MaxHeaderBytes: 32 << 10,
			ErrorLog:       slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		}
		servers = append(servers, msrv)
		a.log.Info("metrics listening", "addr", metricsLn.Addr().String(), "pprof", a.cfg.PProf)
		go func() { errc <- msrv.Serve(metricsLn) }()
	}
	pending := len(servers)
	var serveErr error
	select {
	case serveErr = <-errc: // a listener failed: stop the other server too
		pending--
	case <-ctx.Done():
	}
	a.log.Info("shutting down: finishing requests in flight (10 s at most)")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(shutdownCtx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w", err))
		}
	}
	if serveErr != nil {
		errs = append(errs, serveErr)
	}
	for ; pending > 0; pending-- {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanup runs cleanupOnce now and every interval; one instance at a time
// does the work.
func (a *app) cleanup(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		_, err := a.store.WithLock(ctx, "cleanup", a.cleanupOnce)
		if err != nil && ctx.Err() == nil {
			a.log.Error("cleanup", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cleanupOnce ends expired sessions (their apps are told), then removes
// expired rows and audit events past retention.
func (a *app) cleanupOnce(ctx context.Context) error {
	ended, err := a.provider.EndExpiredSessions(ctx)
	if ended > 0 {
		a.log.Debug("ended expired sessions", "sessions", ended)
	}
	if err != nil {
		return err
	}
	n, err := a.store.DeleteExpired(ctx, a.now())
	if err != nil {
		return err
	}
	if n > 0 {
		a.log.Debug("removed expired rows", "rows", n)
	}
	return a.expireAudit(ctx)
}

// close lets background account jobs finish, drains the mail queue (bounded
// wait) and releases the store and Redis.
func (a *app) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Background account work (forgot-password, resend) may still enqueue mail.
	if err := a.ui.Wait(ctx); err != nil {
		a.log.Warn("account jobs not finished", "err", err)
	}
	if err := a.mailer.Close(ctx); err != nil {
		a.log.Warn("mail queue not drained", "err", err)
	}
	if err := a.closeLimiter(); err != nil {
		a.log.Warn("close rate limiter", "err", err)
	}
	a.closeHasher()
	return a.store.Close()
}

func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
