// Command go-rp is a minimal Go web app that signs users in with Gatehouse.
//
//	go run ./examples/go-rp -issuer http://localhost:8080 -client-id ID -client-secret SECRET
//
// Register it first:
//
//	go run ./cmd/gatehouse clients create --name "Go RP" \
//	    --redirect-uri http://localhost:8000/callback --post-logout-redirect-uri http://localhost:8000/
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/gatehouse-id/gatehouse/examples/go-rp/rp"
)

func main() {
	issuer := flag.String("issuer", "http://localhost:8080", "Gatehouse issuer URL")
	clientID := flag.String("client-id", os.Getenv("CLIENT_ID"), "client id (env CLIENT_ID)")
	clientSecret := flag.String("client-secret", os.Getenv("CLIENT_SECRET"), "client secret (env CLIENT_SECRET)")
	addr := flag.String("addr", "localhost:8000", "listen address")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	app, err := rp.New(ctx, rp.Config{
		Issuer:                *issuer,
		ClientID:              *clientID,
		ClientSecret:          *clientSecret,
		RedirectURL:           "http://" + *addr + "/callback",
		PostLogoutRedirectURL: "http://" + *addr + "/",
	})
	cancel()
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("go-rp on http://%s", *addr)
	srv := &http.Server{Addr: *addr, Handler: app, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
