package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMESnippetsAreTestedCode keeps the README's code snippets identical
// to the example code the tests run: every line of each snippet (bar
// comments starting a line) must appear in its source file. Each section
// names the file behind each of its snippets, by language.
func TestREADMESnippetsAreTestedCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := []struct {
		from, to string
		sources  map[string]string
	}{
		{"## Connect your app", "## High-security clients", map[string]string{
			"ts": "../../examples/authjs-nextjs/auth.ts",
			"js": "../../e2e/browser.test.mjs",
			"go": "../../examples/go-rp/rp/rp.go",
		}},
		{"### Key-based client authentication (private_key_jwt)", "## Clients without a browser", map[string]string{
			"js": "../../e2e/private-key-jwt.test.mjs",
		}},
		{"## Clients without a browser", "## Operations", map[string]string{
			"go": "device_test.go",
			"js": "../../e2e/device.test.mjs",
		}},
		{"## Signing out everywhere (back-channel logout)", "## Sign in with GitHub", map[string]string{
			"ts": "../../examples/authjs-nextjs/app/api/backchannel-logout/route.ts",
		}},
	}
	for _, s := range sections {
		i := strings.Index(string(readme), s.from)
		j := strings.Index(string(readme), s.to)
		if i < 0 || j < i {
			t.Fatalf("README has no section %q before %q", s.from, s.to)
		}
		blocks := regexp.MustCompile("(?s)```(ts|js|go)\n(.*?)```").FindAllStringSubmatch(string(readme[i:j]), -1)
		if len(blocks) != len(s.sources) {
			t.Fatalf("%s: found %d snippets, want %d", s.from, len(blocks), len(s.sources))
		}
		for _, b := range blocks {
			checkSnippet(t, s.from, b[1], b[2], s.sources[b[1]])
		}
	}
}

// checkSnippet reports each line of snippet (bar blank lines and comments)
// that is not in the file at path.
func checkSnippet(t *testing.T, section, lang, snippet, path string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %s snippet: %v", section, lang, err)
	}
	code := string(src)
	for _, line := range strings.Split(snippet, "\n") {
		l := strings.TrimSpace(line)
		if l == "" || strings.HasPrefix(l, "//") {
			continue
		}
		if !strings.Contains(code, l) {
			t.Errorf("%s: %s snippet line not in %s: %q", section, lang, path, l)
		}
	}
}
