package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// healthcheckTimeout bounds the whole probe. /readyz answers 503 within its
// own 2 s store check, so a hung server is the only thing that hits this.
const healthcheckTimeout = 2 * time.Second

// healthcheckCmd probes the local server's readiness for a container's
// HEALTHCHECK, where the image has no shell or curl. It reads only the listen
// address (and whether TLS is on), never the store or the other settings, so
// it works beside a running server and logs nothing.
func healthcheckCmd(e *env) *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the local server's /readyz answers 200 (for container health checks)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u := target
			if u == "" {
				var err error
				u, err = localReadyURL(resolveSetting(cmd.Flags(), e.getenv, "addr"), resolveSetting(cmd.Flags(), e.getenv, "tls-cert") != "")
				if err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), healthcheckTimeout)
			defer cancel()
			return probeReady(ctx, u)
		},
	}
	cmd.Flags().StringVar(&target, "url", "", "URL to probe instead of /readyz on GATEHOUSE_ADDR")
	return cmd
}

// resolveSetting resolves one setting the way loadConfig does (flag, then
// environment, then default) without validating the others.
func resolveSetting(fs *pflag.FlagSet, getenv func(string) string, flag string) string {
	for _, s := range settings {
		if s.flag != flag {
			continue
		}
		if f := fs.Lookup(flag); f != nil && f.Changed {
			return f.Value.String()
		}
		if v := getenv(s.env); v != "" {
			return v
		}
		return s.def
	}
	panic("resolveSetting: no setting " + flag) // a typo in this file
}

// localReadyURL turns a listen address into the URL of /readyz on this host:
// a wildcard or empty host (":8080", "0.0.0.0:8080") is reached on loopback.
func localReadyURL(addr string, useTLS bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("GATEHOUSE_ADDR (--addr): %q is not host:port: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// probeReady GETs u and returns nil only on 200. The error is one line with
// the status and, for a 503 from Gatehouse, which check failed.
func probeReady(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("healthcheck --url: %w", err)
	}
	client := &http.Client{
		// Never follow a redirect: /readyz itself must answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			Proxy: nil, // the probe is for this host; HTTP_PROXY must not divert it
			// The certificate names the public host, not the loopback address
			// probed here; the probe sends nothing secret and trusts only a status.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("healthcheck %s: no answer within %s", u, healthcheckTimeout)
		}
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var r struct {
		Failed string `json:"failed"`
	}
	if json.Unmarshal(body, &r) == nil && r.Failed != "" {
		return fmt.Errorf("healthcheck %s: %s (failed: %s)", u, resp.Status, r.Failed)
	}
	return fmt.Errorf("healthcheck %s: %s", u, resp.Status)
}
