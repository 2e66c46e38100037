package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/login"
	loginmail "github.com/gatehouse-id/gatehouse/login/mail"
	"github.com/gatehouse-id/gatehouse/storage"
)

// The users commands are a front end of the admin service (package admin),
// which checks, changes, ends sessions and audits; they name users by
// email and print what it returns.

// userJSON is a user as `users … --json` prints it.
type userJSON struct {
	ID            string       `json:"id"`
	Email         string       `json:"email"`
	Name          string       `json:"name,omitempty"`
	Role          string       `json:"role"`
	EmailVerified bool         `json:"email_verified"`
	HasPassword   bool         `json:"has_password"`
	Disabled      bool         `json:"disabled"`
	DisabledAt    *time.Time   `json:"disabled_at,omitempty"`
	Locked        bool         `json:"locked"`
	LockedUntil   *time.Time   `json:"locked_until,omitempty"`
	CreatedAt     time.Time    `json:"created_at"`
	Linked        []linkedJSON `json:"linked_identities,omitempty"`
}

type linkedJSON struct {
	Upstream   string     `json:"upstream"`
	Subject    string     `json:"subject"`
	Email      string     `json:"email,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

func toUserJSON(u *admin.User) userJSON {
	j := userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, EmailVerified: u.EmailVerified,
		HasPassword: u.HasPassword, Disabled: u.Disabled(), Locked: u.Locked(), CreatedAt: u.CreatedAt.UTC(),
		Linked: toLinkedJSON(u.Linked)}
	if u.DisabledAt != nil {
		t := u.DisabledAt.UTC()
		j.DisabledAt = &t
	}
	if u.Locked() {
		t := u.LockedUntil.UTC()
		j.LockedUntil = &t
	}
	return j
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

func usersCmd(e *env) *cobra.Command {
	return group("users", "Manage users",
		withSettings(usersCreateCmd(e), scopeStore|scopePasswords),
		withSettings(usersListCmd(e), scopeStore),
		withSettings(usersGetCmd(e), scopeStore),
		withSettings(usersSetRoleCmd(e), scopeStore),
		withSettings(usersVerifyCmd(e), scopeStore),
		withSettings(usersDisableCmd(e), scopeStore),
		withSettings(usersEnableCmd(e), scopeStore),
		withSettings(usersSetPasswordCmd(e), scopeStore|scopePasswords),
		withSettings(usersDeleteCmd(e), scopeStore),
		withSettings(usersUnlockCmd(e), scopeStore),
		withSettings(usersUnlinkCmd(e), scopeStore),
		withSettings(usersResetMFACmd(e), scopeStore),
		withSettings(usersSessionsCmd(e), scopeStore),
		withSettings(usersSignOutCmd(e), scopeStore))
}

// withAdmin runs fn with the admin service on the command's store.
func withAdmin(cmd *cobra.Command, e *env, fn func(ctx context.Context, svc *admin.Service) error) error {
	return withCore(cmd, e, func(ctx context.Context, cfg *config, c *core) error {
		svc, err := adminService(cfg, c, e, nil)
		if err != nil {
			return err
		}
		return fn(ctx, svc)
	})
}

// withUser runs fn for the user with the address EMAIL, with the service.
func withUser(cmd *cobra.Command, e *env, email string, fn func(ctx context.Context, svc *admin.Service, u *admin.User) error) error {
	return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
		u, err := svc.UserByEmail(ctx, admin.CLI, email)
		if err != nil {
			return err
		}
		return fn(ctx, svc, u)
	})
}

// printUser prints u as JSON or as one line of what changed (line).
func printUser(e *env, asJSON bool, u *admin.User, line string, args ...any) error {
	if asJSON {
		return printJSON(e.stdout, toUserJSON(u))
	}
	fmt.Fprintf(e.stdout, line+"\n", args...)
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
			pw, err := passwordFromStdin(e, pwStdin)
			if err != nil {
				return err
			}
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				u, err := svc.CreateUser(ctx, admin.CLI, admin.NewUser{Email: email, Name: name, Role: role, EmailVerified: !unverified, Password: pw})
				if err != nil {
					return err
				}
				return printUser(e, asJSON, u, "created user %s (%s, role %s)", u.Email, u.ID, u.Role)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&email, "email", "", "email address")
	f.StringVar(&name, "name", "", "display name")
	f.StringVar(&role, "role", admin.DefaultRole, "role (upper case)")
	f.BoolVar(&unverified, "unverified", false, "leave the email address unverified")
	f.BoolVar(&pwStdin, "password-stdin", false, "read the password from stdin")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// usersListCmd lists users by email. Without --limit or --cursor it lists
// every user (page by page); with them, one page, and says on stderr how
// to get the next.
func usersListCmd(e *env) *cobra.Command {
	var search, cursor string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users (all, or a page with --limit / --cursor)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all := !cmd.Flags().Changed("limit") && cursor == ""
			if all {
				limit = admin.MaxPageSize
			}
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				var out []userJSON
				q := admin.UserQuery{Search: search, Limit: limit, Cursor: cursor}
				for {
					page, err := svc.ListUsers(ctx, admin.CLI, q)
					if err != nil {
						return err
					}
					for i := range page.Items {
						out = append(out, toUserJSON(&page.Items[i]))
					}
					if page.NextCursor == "" {
						break
					}
					if !all {
						fmt.Fprintf(e.stderr, "more users: continue with --cursor %s\n", page.NextCursor)
						break
					}
					q.Cursor = page.NextCursor
				}
				if asJSON {
					return printJSON(e.stdout, nonNilUsers(out))
				}
				for _, u := range out {
					linked := make([]string, 0, len(u.Linked))
					for _, l := range u.Linked {
						linked = append(linked, l.Upstream)
					}
					fmt.Fprintf(e.stdout, "%s\t%s\t%s\tverified=%t\tpassword=%t\tlinked=%s\tdisabled=%t\tlocked=%t\n",
						u.ID, u.Email, u.Role, u.EmailVerified, u.HasPassword, strings.Join(linked, ","), u.Disabled, u.Locked)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&search, "search", "", "only users whose email starts with this or whose name contains it")
	f.IntVar(&limit, "limit", admin.DefaultPageSize, fmt.Sprintf("at most this many users (1–%d); the rest with --cursor", admin.MaxPageSize))
	f.StringVar(&cursor, "cursor", "", "continue a listing where the previous page ended")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func nonNilUsers(l []userJSON) []userJSON {
	if l == nil {
		return []userJSON{}
	}
	return l
}

func usersGetCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get EMAIL",
		Short: "Show a user: role, verified, disabled, locked, linked accounts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withUser(cmd, e, args[0], func(_ context.Context, _ *admin.Service, u *admin.User) error {
				if asJSON {
					return printJSON(e.stdout, toUserJSON(u))
				}
				j := toUserJSON(u)
				linked := make([]string, 0, len(j.Linked))
				for _, l := range j.Linked {
					linked = append(linked, l.Upstream+":"+l.Subject)
				}
				lines := [][2]string{
					{"id", j.ID}, {"email", j.Email}, {"name", j.Name}, {"role", j.Role},
					{"email_verified", fmt.Sprint(j.EmailVerified)}, {"has_password", fmt.Sprint(j.HasPassword)},
					{"disabled", fmt.Sprint(j.Disabled)}, {"locked", fmt.Sprint(j.Locked)},
					{"created_at", j.CreatedAt.Format(time.RFC3339)}, {"linked", strings.Join(linked, " ")},
				}
				if j.DisabledAt != nil {
					lines = append(lines, [2]string{"disabled_at", j.DisabledAt.Format(time.RFC3339)})
				}
				if j.LockedUntil != nil {
					lines = append(lines, [2]string{"locked_until", j.LockedUntil.Format(time.RFC3339)})
				}
				for _, l := range lines {
					fmt.Fprintf(e.stdout, "%-15s %s\n", l[0]+":", l[1])
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func usersSetRoleCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set-role EMAIL ROLE",
		Short: "Change a user's role (effective in the next token)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withUser(cmd, e, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				u, err := svc.SetRole(ctx, admin.CLI, u.ID, args[1], "")
				if err != nil {
					return err
				}
				return printUser(e, asJSON, u, "%s now has role %s", u.Email, u.Role)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func usersVerifyCmd(e *env) *cobra.Command {
	var unverified, asJSON bool
	cmd := &cobra.Command{
		Use:   "verify EMAIL",
		Short: "Mark a user's email address verified (or, with --unverified, not)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withUser(cmd, e, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				u, err := svc.SetEmailVerified(ctx, admin.CLI, u.ID, !unverified, "")
				if err != nil {
					return err
				}
				state := "verified"
				if !u.EmailVerified {
					state = "unverified"
				}
				return printUser(e, asJSON, u, "the address %s is now %s", u.Email, state)
			})
		},
	}
	cmd.Flags().BoolVar(&unverified, "unverified", false, "mark the address not verified")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func usersDisableCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "disable EMAIL",
		Short: "Stop a user from signing in; ends their sessions and refresh tokens (their apps are told)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withUser(cmd, e, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				u, n, err := svc.Disable(ctx, admin.CLI, u.ID, "")
				if err != nil {
					return err
				}
				return printUser(e, asJSON, u, "disabled %s: %d sessions ended, refresh tokens revoked", u.Email, n)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func usersEnableCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "enable EMAIL",
		Short: "Let a disabled user sign in again (what disabling ended stays ended)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withUser(cmd, e, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				u, err := svc.Enable(ctx, admin.CLI, u.ID, "")
				if err != nil {
					return err
				}
				return printUser(e, asJSON, u, "enabled %s: they can sign in again", u.Email)
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
			return withUser(cmd, e, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				if _, _, err := svc.SetPassword(ctx, admin.CLI, u.ID, pw, ""); err != nil {
					return err
				}
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
			return withUser(cmd, e, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				if err := svc.DeleteUser(ctx, admin.CLI, u.ID, ""); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "deleted user %s\n", u.Email)
				return nil
			})
		},
	}
}

// usersUnlockCmd lifts a sign-in lock. Locks are kept per submitted email,
// whether or not an account exists, so this works for any address.
func usersUnlockCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "unlock EMAIL",
		Short: "Lift a sign-in lockout and reset the failure count",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				if err := svc.Unlock(ctx, admin.CLI, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "sign-in unlocked for %s\n", login.NormalizeEmail(args[0]))
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
			return withUser(cmd, e, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				after, err := svc.UnlinkIdentity(ctx, admin.CLI, u.ID, args[1])
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "unlinked %s from upstream %s\n", u.Email, args[1])
				if len(after.Linked) == 0 && !after.HasPassword {
					fmt.Fprintf(e.stderr, "note: %s now has no password and no linked upstream; they can sign in again after setting a password through \"Forgot password\"\n", u.Email)
				}
				return nil
			})
		},
	}
}

// usersResetMFACmd removes every second factor of a user who lost theirs
// (the service also ends their sessions and mails them); the command waits
// until the mail is handed to SMTP.
func usersResetMFACmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "reset-mfa EMAIL",
		Short: "Remove all of a user's second factors (passkeys, authenticator app, recovery codes); ends their sessions and refresh tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCore(cmd, e, func(ctx context.Context, cfg *config, c *core) error {
				m, err := cliMailer(cfg, c)
				if err != nil {
					return err
				}
				err = resetMFA(ctx, cfg, c, e, m, args[0])
				// The mail queued, if any, goes out before the command ends.
				if ferr := flushCLIMail(ctx, m); err == nil {
					err = ferr
				}
				return err
			})
		},
	}
}

func resetMFA(ctx context.Context, cfg *config, c *core, e *env, m *loginmail.Mailer, email string) error {
	svc, err := adminService(cfg, c, e, m)
	if err != nil {
		return err
	}
	u, err := svc.UserByEmail(ctx, admin.CLI, email)
	if err != nil {
		return err
	}
	r, err := svc.ResetMFA(ctx, admin.CLI, u.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "removed the second factors of %s (%d passkeys, authenticator app: %s, %d unused recovery codes); their sessions and refresh tokens were revoked\n",
		u.Email, r.Passkeys, yesNo(r.TOTP), r.RecoveryCodes)
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// cliMailer is a mailer with the server's mail settings, for a command that
// tells a user of a change.
func cliMailer(cfg *config, c *core) (*loginmail.Mailer, error) {
	sender, err := loginmail.NewSender(cfg.SMTPURL, cfg.MailFrom, c.log)
	if err != nil {
		return nil, err
	}
	return loginmail.NewMailer(sender, loginmail.Config{ProductName: cfg.ProductName, Logger: c.log, LogKey: emailPseudonymKey(c.secret)}), nil
}

// flushCLIMail waits (at most 30 s) until the queued mail was handed to
// SMTP, or written to the log when SMTP_URL is empty.
func flushCLIMail(ctx context.Context, m *loginmail.Mailer) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := m.Close(cctx); err != nil {
		return fmt.Errorf("mail the user: %w", err)
	}
	return nil
}
