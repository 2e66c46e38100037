package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEListsEverySetting keeps the README's configuration table in step
// with the settings the binary reads.
func TestREADMEListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range settings {
		def := "`" + s.def + "`"
		if s.def == "" {
			def = "(empty)"
		}
		row := "| `" + s.env + "` | `--" + s.flag + "` | " + def + " |"
		if !strings.Contains(readme, row) {
			t.Errorf("README configuration table lacks the row starting %q", row)
		}
	}
}
