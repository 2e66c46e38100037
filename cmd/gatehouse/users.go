package main

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/login"
	loginmail "github.com/gatehouse-id/gatehouse/login/mail"
	"github.com/gatehouse-id/gatehouse/login/policy"
	"github.com/gatehouse-id/gatehouse/op"
	"github.com/gatehouse-id/gatehouse/op/backchannel"
	"github.com/gatehouse-id/gatehouse/storage"
)

// userJSON is a user as `users … --json` prints it.
type userJSON struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	Name          string `json:"name,omitempty"`
	Role          string `json:"role"`
	EmailVerified bool   `json:"email_verified"`
	HasPassword   bool   `json:"has_password"`
	// Linked are the upstream identities (users list only).
	Linked []linkedJSON `json:"linked_identities,omitempty"`
}

type linkedJSON struct {
	Upstream   string     `json:"upstream"`
	Subject    string     `json:"subject"`
	Email      string     `json:"email,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

func toUserJSON(u *storage.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, EmailVerified: u.EmailVerified, HasPassword: u.PasswordHash != ""}
}

func toLinkedJSON(links []storage.LinkedIdentity) []linkedJSON {
	out := make([]linkedJSON, 0, len(links))
	for _, l := range links {
		j := linkedJSON{Upstream: l.Upstream, Subject: l.Subject, Email: l.Email, CreatedAt: l.CreatedAt.UTC()}
		if !l.LastUsedAt.IsZero() {
			t := l.LastUsedAt.UTC()
			j.LastUsedAt = &t
		}
		out = append(out, j)
	}
	return out
}

// rolePattern: roles are upper-case names (USER, ADMIN, BILLING_ADMIN).
var rolePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,31}$`)

func usersCmd(e *env) *cobra.Command {
	return group("users", "Manage users",
		withSettings(usersCreateCmd(e), scopeStore|scopePasswords),
		withSettings(usersListCmd(e), scopeStore),
		withSettings(usersSetRoleCmd(e), scopeStore),
		withSettings(usersSetPasswordCmd(e), scopeStore|scopePasswords),
		withSettings(usersDeleteCmd(e), scopeStore),
		withSettings(usersUnlockCmd(e), scopeStore),
		withSettings(usersUnlinkCmd(e), scopeStore),
		withSettings(usersResetMFACmd(e), scopeStore),
		withSettings(usersSessionsCmd(e), scopeStore),
		withSettings(usersSignOutCmd(e), scopeStore))
}

func checkEmail(raw string) (string, error) {
	email := login.NormalizeEmail(raw)
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return "", fmt.Errorf("%q is not a valid email address", raw)
	}
	return email, nil
}

// checkPassword applies the configured password policy, the same one the
// registration and reset pages apply.
func checkPassword(cfg *config, pw string) error {
	p := policy.Password{
		MinLength: cfg.PasswordMinLength, RequireUpper: cfg.PasswordUpper,
		RequireDigit: cfg.PasswordDigit, CheckCommon: cfg.PasswordCommon,
	}
	if cfg.PasswordHasher == "bcrypt" {
		p.MaxBytes = policy.BcryptMaxBytes
	}
	if v := p.Check(pw); len(v) > 0 {
		return errors.New(v[0].Message)
	}
	return nil
}

func usersCreateCmd(e *env) *cobra.Command {
	var email, name, role string
	var unverified, pwStdin, asJSON bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a user (password read from stdin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := checkEmail(email)
			if err != nil {
				return err
			}
			if !rolePattern.MatchString(role) {
				return fmt.Errorf("role %q: use an upper-case name such as USER or ADMIN", role)
			}
			if utf8.RuneCountInString(name) < 1 {
				return errors.New("--name is required")
			}
			pw, err := passwordFromStdin(e, pwStdin)
			if err != nil {
				return err
			}
			return withCore(cmd, e, func(ctx context.Context, cfg *config, c *core) error {
				if err := checkPassword(cfg, pw); err != nil {
					return err
				}
				hasher, err := newHasher(cfg, nil)
				if err != nil {
					return err
				}
				hash, err := hasher.Hash(ctx, pw)
				if err != nil {
					return fmt.Errorf("hash password: %w", err)
				}
				now := e.now().UTC()
				u := &storage.User{
					ID: newUserID(), Email: addr, Name: name, Role: role, EmailVerified: !unverified,
					PasswordHash: hash, CreatedAt: now, UpdatedAt: now,
				}
				if err := c.store.CreateUser(ctx, u); err != nil {
					if errors.Is(err, storage.ErrConflict) {
						return fmt.Errorf("a user with email %s already exists", addr)
					}
					return fmt.Errorf("create user: %w", err)
				}
				c.audit(ctx, now, storage.AuditEvent{Action: storage.AuditUserCreated, Subject: u.ID, Detail: map[string]string{"role": u.Role}})
				if asJSON {
					return printJSON(e.stdout, toUserJSON(u))
				}
				fmt.Fprintf(e.stdout, "created user %s (%s, role %s)\n", u.Email, u.ID, u.Role)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&email, "email", "", "email address")
	f.StringVar(&name, "name", "", "display name")
	f.StringVar(&role, "role", "USER", "role (upper case)")
	f.BoolVar(&unverified, "unverified", false, "leave the email address unverified")
	f.BoolVar(&pwStdin, "password-stdin", false, "read the password from stdin")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func usersListCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCore(cmd, e, func(ctx context.Context, _ *config, c *core) error {
				list, err := c.store.ListUsers(ctx)
				if err != nil {
					return fmt.Errorf("list users: %w", err)
				}
				out := make([]userJSON, 0, len(list))
				for i := range list {
					u := toUserJSON(&list[i])
					links, err := c.store.ListLinkedIdentities(ctx, u.ID)
					if err != nil {
						return fmt.Errorf("list linked identities: %w", err)
					}
					u.Linked = toLinkedJSON(links)
					out = append(out, u)
				}
				if asJSON {
					return printJSON(e.stdout, out)
				}
				for _, u := range out {
					linked := make([]string, 0, len(u.Linked))
					for _, l := range u.Linked {
						linked = append(linked, l.Upstream)
					}
					fmt.Fprintf(e.stdout, "%s\t%s\t%s\tverified=%t\tpassword=%t\tlinked=%s\n",
						u.ID, u.Email, u.Role, u.EmailVerified, u.HasPassword, strings.Join(linked, ","))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// userByEmail loads a user for the commands that take EMAIL.
func userByEmail(ctx context.Context, st storage.Store, raw string) (*storage.User, error) {
	u, err := st.GetUserByEmail(ctx, login.NormalizeEmail(raw))
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("no user with email %s", login.NormalizeEmail(raw))
		}
		return nil, fmt.Errorf("load user: %w", err)
	}
	return u, nil
}

func usersSetRoleCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set-role EMAIL ROLE",
		Short: "Change a user's role (effective in the next token)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !rolePattern.MatchString(args[1]) {
				return fmt.Errorf("role %q: use an upper-case name such as USER or ADMIN", args[1])
			}
			return withCore(cmd, e, func(ctx context.Context, _ *config, c *core) error {
				u, err := userByEmail(ctx, c.store, args[0])
				if err != nil {
					return err
				}
				from := u.Role
				u.Role, u.UpdatedAt = args[1], e.now()
				if err := c.store.UpdateUser(ctx, u); err != nil {
					return fmt.Errorf("set role: %w", err)
				}
				c.audit(ctx, e.now(), storage.AuditEvent{Action: storage.AuditUserRoleChanged, Subject: u.ID, Detail: map[string]string{"from": from, "to": args[1]}})
				if asJSON {
					return printJSON(e.stdout, toUserJSON(u))
				}
				fmt.Fprintf(e.stdout, "%s now has role %s\n", u.Email, u.Role)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func usersSetPasswordCmd(e *env) *cobra.Command {
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "set-password EMAIL",
		Short: "Set a user's password (read from stdin); ends their sessions and refresh tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := passwordFromStdin(e, pwStdin)
			if err != nil {
				return err
			}
			return withCore(cmd, e, func(ctx context.Context, cfg *config, c *core) error {
				if err := checkPassword(cfg, pw); err != nil {
					return err
				}
				u, err := userByEmail(ctx, c.store, args[0])
				if err != nil {
					return err
				}
				hasher, err := newHasher(cfg, nil)
				if err != nil {
					return err
				}
				hash, err := hasher.Hash(ctx, pw)
				if err != nil {
					return fmt.Errorf("hash password: %w", err)
				}
				now := e.now()
				if err := c.store.UpdateUserPassword(ctx, u.ID, hash, now); err != nil {
					return fmt.Errorf("set password: %w", err)
				}
				if _, err := sessionEnder(cfg, c, now).EndUserSessions(ctx, u.ID, "admin_password_set"); err != nil {
					return err
				}
				c.audit(ctx, now, storage.AuditEvent{Action: storage.AuditUserPasswordSet, Subject: u.ID})
				fmt.Fprintf(e.stdout, "password changed for %s; their sessions and refresh tokens were revoked\n", u.Email)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from stdin")
	return cmd
}

func usersDeleteCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "delete EMAIL",
		Short: "Delete a user, their sessions and tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCore(cmd, e, func(ctx context.Context, cfg *config, c *core) error {
				u, err := userByEmail(ctx, c.store, args[0])
				if err != nil {
					return err
				}
				// Sessions end first, while the grants that say which apps
				// to tell still exist.
				if _, err := sessionEnder(cfg, c, e.now()).EndUserSessions(ctx, u.ID, "account_deleted"); err != nil {
					return err
				}
				if err := c.store.DeleteUser(ctx, u.ID); err != nil {
					return fmt.Errorf("delete user: %w", err)
				}
				c.audit(ctx, e.now(), storage.AuditEvent{Action: storage.AuditUserDeleted, Subject: u.ID})
				fmt.Fprintf(e.stdout, "deleted user %s\n", u.Email)
				return nil
			})
		},
	}
}

// newUserID returns a UUIDv7: unique, and ordered by creation in indexes.
func newUserID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// usersUnlockCmd lifts a sign-in lock. Locks are kept per submitted email,
// whether or not an account exists, so this works for any address.
func usersUnlockCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "unlock EMAIL",
		Short: "Lift a sign-in lockout and reset the failure count",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCore(cmd, e, func(ctx context.Context, _ *config, c *core) error {
				email := login.NormalizeEmail(args[0])
				if err := c.store.ClearLoginFailures(ctx, email); err != nil {
					return fmt.Errorf("unlock: %w", err)
				}
				// The second step's lock too (wrong authenticator codes).
				if u, err := c.store.GetUserByEmail(ctx, email); err == nil {
					if err := c.store.ClearLoginFailures(ctx, login.SecondFactorLockKey(u.ID)); err != nil {
						return fmt.Errorf("unlock second step: %w", err)
					}
				} else if !errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("load user: %w", err)
				}
				subjects, err := auditSubjects(ctx, c, email)
				if err != nil {
					return err
				}
				// The account when there is one, else the address's pseudonym.
				c.audit(ctx, e.now(), storage.AuditEvent{Action: storage.AuditUserUnlocked, Subject: subjects[len(subjects)-1]})
				fmt.Fprintf(e.stdout, "sign-in unlocked for %s\n", email)
				return nil
			})
		},
	}
}

// passwordFromStdin reads the password of users create / set-password, which
// never take one on the command line (it would land in shell history).
func passwordFromStdin(e *env, pwStdin bool) (string, error) {
	if !pwStdin {
		return "", errors.New("pass the password on stdin with --password-stdin")
	}
	return readPassword(e.stdin)
}

// usersUnlinkCmd removes a user's link to an upstream identity provider.
// An admin may remove the last way a user has to sign in; the command says
// so, and the user can still set a password through "Forgot password".
func usersUnlinkCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "unlink EMAIL UPSTREAM",
		Short: "Disconnect a user's account at an upstream (GitHub, an OIDC provider) from their Gatehouse account",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCore(cmd, e, func(ctx context.Context, _ *config, c *core) error {
				u, err := userByEmail(ctx, c.store, args[0])
				if err != nil {
					return err
				}
				if err := c.store.UnlinkIdentity(ctx, u.ID, args[1]); err != nil {
					if errors.Is(err, storage.ErrNotFound) {
						return fmt.Errorf("%s has no link to upstream %q", u.Email, args[1])
					}
					return fmt.Errorf("unlink: %w", err)
				}
				c.audit(ctx, e.now(), storage.AuditEvent{Action: storage.AuditIdentityUnlinked, Subject: u.ID, Detail: map[string]string{"upstream": args[1]}})
				fmt.Fprintf(e.stdout, "unlinked %s from upstream %s\n", u.Email, args[1])
				rest, err := c.store.ListLinkedIdentities(ctx, u.ID)
				if err == nil && len(rest) == 0 && u.PasswordHash == "" {
					fmt.Fprintf(e.stderr, "note: %s now has no password and no linked upstream; they can sign in again after setting a password through \"Forgot password\"\n", u.Email)
				}
				return nil
			})
		},
	}
}

// usersResetMFACmd removes every second factor of a user who lost theirs.
// Their sessions and refresh tokens end too: a session that passed a second
// factor should not outlive it, and whoever holds the account next signs in
// afresh (and enrols again where a factor is required).
func usersResetMFACmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "reset-mfa EMAIL",
		Short: "Remove all of a user's second factors (passkeys, authenticator app, recovery codes); ends their sessions and refresh tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCore(cmd, e, func(ctx context.Context, cfg *config, c *core) error {
				u, err := userByEmail(ctx, c.store, args[0])
				if err != nil {
					return err
				}
				// What is removed, for the audit trail and the admin.
				passkeys, err := c.store.ListWebAuthnCredentials(ctx, u.ID)
				if err != nil {
					return fmt.Errorf("list passkeys: %w", err)
				}
				_, err = c.store.GetTOTP(ctx, u.ID)
				hasTOTP := err == nil
				if err != nil && !errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("load authenticator app: %w", err)
				}
				codes, err := c.store.CountRecoveryCodes(ctx, u.ID)
				if err != nil {
					return fmt.Errorf("count recovery codes: %w", err)
				}
				now := e.now()
				if err := c.store.DeleteMFA(ctx, u.ID); err != nil {
					return fmt.Errorf("remove second factors: %w", err)
				}
				if _, err := sessionEnder(cfg, c, now).EndUserSessions(ctx, u.ID, "mfa_reset"); err != nil {
					return err
				}
				c.audit(ctx, now, storage.AuditEvent{Action: storage.AuditMFAReset, Subject: u.ID, Detail: map[string]string{
					"passkeys": strconv.Itoa(len(passkeys)), "totp": strconv.FormatBool(hasTOTP), "recovery_codes": strconv.Itoa(codes),
				}})
				fmt.Fprintf(e.stdout, "removed the second factors of %s (%d passkeys, authenticator app: %s, %d unused recovery codes); their sessions and refresh tokens were revoked\n",
					u.Email, len(passkeys), yesNo(hasTOTP), codes)
				// The user is told: a reset nobody asked for is how an
				// account takeover through the helpdesk shows.
				return sendCLIMail(ctx, cfg, c, func(m *loginmail.Mailer) { m.MFAReset(ctx, u.Email, u.Name) })
			})
		},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// sendCLIMail sends one message from a command with the server's mail
// settings and waits (at most 30 s) until it was handed to SMTP, or written
// to the log when SMTP_URL is empty.
func sendCLIMail(ctx context.Context, cfg *config, c *core, send func(m *loginmail.Mailer)) error {
	sender, err := loginmail.NewSender(cfg.SMTPURL, cfg.MailFrom, c.log)
	if err != nil {
		return err
	}
	m := loginmail.NewMailer(sender, loginmail.Config{ProductName: cfg.ProductName, Logger: c.log, LogKey: emailPseudonymKey(c.secret)})
	send(m)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := m.Close(cctx); err != nil {
		return fmt.Errorf("mail the user: %w", err)
	}
	return nil
}

// sessionEnder is the server's SessionEnder for a command: the sessions it
// ends get their logout tokens queued, and a running server sends them
// within seconds (its delivery worker polls the outbox).
func sessionEnder(cfg *config, c *core, now time.Time) *op.SessionEnder {
	clock := func() time.Time { return now }
	return op.NewSessionEnder(c.store, backchannel.NewMinter(cfg.Issuer, c.keys, clock, 0), clock, c.log, nil)
}
