package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMESnippetsAreTestedCode keeps the README's "Connect your app"
// snippets identical to the example code the tests run: every line of each
// snippet (bar comments starting a line) must appear in its source file.
func TestREADMESnippetsAreTestedCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	i := strings.Index(section, "## Connect your app")
	j := strings.Index(section, "## Operations")
	if i < 0 || j < i {
		t.Fatal("README has no Connect your app section")
	}
	section = section[i:j]
	sources := map[string]string{
		"ts": "../../examples/authjs-nextjs/auth.ts",
		"js": "../../e2e/browser.test.mjs",
		"go": "../../examples/go-rp/rp/rp.go",
	}
	blocks := regexp.MustCompile("(?s)```(ts|js|go)\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) != len(sources) {
		t.Fatalf("found %d snippets, want %d", len(blocks), len(sources))
	}
	for _, b := range blocks {
		src, err := os.ReadFile(sources[b[1]])
		if err != nil {
			t.Fatal(err)
		}
		code := string(src)
		for _, line := range strings.Split(b[2], "\n") {
			l := strings.TrimSpace(line)
			if l == "" || strings.HasPrefix(l, "//") {
				continue
			}
			if !strings.Contains(code, l) {
				t.Errorf("%s snippet line not in %s: %q", b[1], sources[b[1]], l)
			}
		}
	}
}
