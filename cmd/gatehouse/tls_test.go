package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeTLS: with GATEHOUSE_TLS_CERT/KEY the server speaks TLS itself, the
// https issuer shows in discovery, and the sign-in cookies are Secure.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "https://" + ln.Addr().String()
	vars := map[string]string{
		"GATEHOUSE_ISSUER": issuer, "GATEHOUSE_DATA_DIR": t.TempDir(), "GATEHOUSE_LOG_LEVEL": "warn",
		"GATEHOUSE_TLS_CERT": certFile, "GATEHOUSE_TLS_KEY": keyFile,
	}
	getenv := func(k string) string { return vars[k] }
	cfg, err := loadConfig(newRootCmd(&env{getenv: getenv}).PersistentFlags(), getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, newLogger(cfg, testLogWriter{t}), time.Now)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		a.close()
	})

	jar, _ := cookiejar.New(nil)
	c := &http.Client{
		Jar:           jar,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("TLS discovery: %v", err)
	}
	var d map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if d["issuer"] != issuer {
		t.Errorf("issuer = %v", d["issuer"])
	}
	out, errOut, code := runCLI(getenv, "", "clients", "create", "--json", "--redirect-uri", "https://app.example/cb")
	if code != 0 {
		t.Fatal(errOut)
	}
	var cl createdClient
	_ = json.Unmarshal([]byte(out), &cl)
	challenge := strings.Repeat("a", 43) // any well-formed S256 challenge; no token is redeemed here
	resp, err = c.Get(issuer + "/authorize?client_id=" + cl.ClientID + "&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid&code_challenge=" + challenge + "&code_challenge_method=S256")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies() // the browser binding of the request
	resp, err = c.Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in page: %d", resp.StatusCode)
	}
	cookies = append(cookies, resp.Cookies()...) // CSRF
	if len(cookies) < 2 {
		t.Fatalf("expected the binding and CSRF cookies, got %v", cookies)
	}
	for _, ck := range cookies {
		if !ck.Secure || !ck.HttpOnly || !strings.HasPrefix(ck.Name, "__Host-") {
			t.Errorf("cookie %s: Secure=%t HttpOnly=%t (want both, and the __Host- prefix)", ck.Name, ck.Secure, ck.HttpOnly)
		}
	}
	// Plain http to the TLS port is refused, not served.
	if r, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil && r.StatusCode == 200 {
		t.Error("plain http served on the TLS port")
	}
}

func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
