//go:build ignore

// gen_common derives common-passwords.txt from the ranked password list of
// the npm package @zxcvbn-ts/language-common (MIT, see
// common-passwords.LICENSE):
//
//	cd $(mktemp -d) && npm pack @zxcvbn-ts/language-common && tar xzf zxcvbn-ts-language-common-*.tgz
//	go run gen_common.go -n 30000 $OLDPWD/package/src/passwords.json > common-passwords.txt
//
// It keeps the first n distinct entries (most common first), lower-cased,
// skipping any with white space.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"unicode"
)

func main() {
	n := flag.Int("n", 30000, "entries to keep")
	flag.Parse()
	b, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var words []string
	if err := json.Unmarshal(b, &words); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	seen := map[string]bool{}
	var out strings.Builder
	kept := 0
	for _, w := range words {
		w = strings.ToLower(strings.TrimSpace(w))
		if w == "" || seen[w] || strings.IndexFunc(w, unicode.IsSpace) >= 0 {
			continue
		}
		seen[w] = true
		out.WriteString(w + "\n")
		if kept++; kept == *n {
			break
		}
	}
	os.Stdout.WriteString(out.String())
}
