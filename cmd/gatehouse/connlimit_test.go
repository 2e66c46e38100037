package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestConnectionCap: with GATEHOUSE_MAX_CONNECTIONS=20, twenty idle
// keep-alive connections hold every slot. A further request is not answered
// while they stay open (not even /healthz: it shares the cap), is answered
// promptly once one of them closes, and every slot is free again once all
// have closed.
func TestConnectionCap(t *testing.T) {
	const limit = 20
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_MAX_CONNECTIONS": strconv.Itoa(limit)})
	addr := strings.TrimPrefix(ts.issuer, "http://")

	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	hold := func() {
		t.Helper()
		held = append(held, servedConn(t, addr))
	}
	for range limit {
		hold()
	}

	// One more, on a new connection.
	answered := make(chan error, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
		resp, err := c.Get(ts.issuer + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a request over the cap was answered (err %v) while %d connections were held", err, limit)
	case <-time.After(time.Second):
	}

	// Freeing one slot lets it through, well before any server timeout
	// (header 10 s, idle 120 s) could have freed one.
	held[0].Close()
	freed := time.Now()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("request after a slot was freed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request still not answered 5 s after a slot was freed")
	}
	t.Logf("answered %s after a slot was freed", time.Since(freed).Round(100*time.Microsecond))

	// Closing the rest frees every slot: the full number of connections is
	// served again.
	for _, c := range held[1:] {
		c.Close()
	}
	held = nil
	for range limit {
		hold()
	}
}

// servedConn opens a connection to addr, has one request answered on it and
// returns it open: an idle keep-alive connection holding a slot. Failing to
// be answered within 5 s fails the test.
func servedConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		t.Fatalf("connection not served: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		c.Close()
		t.Fatalf("GET /healthz: status %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	_ = c.SetDeadline(time.Time{})
	return c
}
