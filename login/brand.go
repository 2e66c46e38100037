package login

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Branding: product name, logo and primary colour. The colour reaches the
// pages through a small generated stylesheet (/brand.css) that sets CSS custom
// properties, never through inline style, which the CSP forbids.

type rgb struct{ r, g, b float64 } // 0…255

// parseHexColor accepts "#rgb" and "#rrggbb" (any case).
func parseHexColor(s string) (rgb, bool) {
	if len(s) != 4 && len(s) != 7 || s[0] != '#' {
		return rgb{}, false
	}
	hexs := s[1:]
	if len(hexs) == 3 {
		hexs = string([]byte{hexs[0], hexs[0], hexs[1], hexs[1], hexs[2], hexs[2]})
	}
	v, err := strconv.ParseUint(hexs, 16, 32)
	if err != nil || strings.ContainsAny(hexs, "+-xX") {
		return rgb{}, false
	}
	return rgb{float64(v >> 16 & 0xff), float64(v >> 8 & 0xff), float64(v & 0xff)}, true
}

func (c rgb) String() string {
	clamp := func(f float64) int { return int(math.Round(math.Max(0, math.Min(255, f)))) }
	return fmt.Sprintf("#%02x%02x%02x", clamp(c.r), clamp(c.g), clamp(c.b))
}

// mix returns c moved towards o by t (0…1).
func (c rgb) mix(o rgb, t float64) rgb {
	return rgb{c.r + (o.r-c.r)*t, c.g + (o.g-c.g)*t, c.b + (o.b-c.b)*t}
}

// luminance is WCAG's relative luminance.
func (c rgb) luminance() float64 {
	ch := func(v float64) float64 {
		v /= 255
		if v <= 0.03928 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(c.r) + 0.7152*ch(c.g) + 0.0722*ch(c.b)
}

func contrast(a, b rgb) float64 {
	la, lb := a.luminance(), b.luminance()
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

var (
	white      = rgb{255, 255, 255}
	black      = rgb{0, 0, 0}
	lightCard  = white
	darkCard   = rgb{0x1b, 0x1e, 0x25}
	darkAccent = rgb{0x0b, 0x12, 0x20}
)

// adjustFor returns c darkened (or lightened) until it reaches 4.5:1 against
// bg, so links and buttons stay readable whatever colour was configured.
func adjustFor(c, bg rgb) rgb {
	towards := black
	if bg.luminance() < 0.2 {
		towards = white
	}
	for t := 0.0; t <= 1; t += 0.05 {
		if m := c.mix(towards, t); contrast(m, bg) >= 4.5 {
			return m
		}
	}
	return towards
}

// textOn picks white or a near-black text colour for a button of colour c.
func textOn(c rgb) rgb {
	if contrast(white, c) >= contrast(darkAccent, c) {
		return white
	}
	return darkAccent
}

// brand is the derived branding, computed once.
type brand struct {
	css     []byte // nil when no colour is configured
	version string
	logo    string // "" ⇒ the bundled logo
	imgSrc  string // extra CSP img-src source for an external logo, or ""
}

func newBrand(color, logo string) brand {
	b := brand{logo: logo}
	if logo != "" && !strings.HasPrefix(logo, "/") {
		b.imgSrc = cspSource(logo)
	}
	c, ok := parseHexColor(color)
	if !ok {
		return b
	}
	light := adjustFor(c, lightCard)
	dark := adjustFor(c, darkCard)
	if contrast(c, darkCard) >= 4.5 {
		dark = c
	}
	css := fmt.Sprintf(`/* Generated from the configured brand colour %s. */
:root {
  --accent: %s;
  --accent-hover: %s;
  --accent-text: %s;
}
@media (prefers-color-scheme: dark) {
  :root {
    --accent: %s;
    --accent-hover: %s;
    --accent-text: %s;
  }
}
`, c, light, light.mix(black, 0.2), textOn(light), dark, dark.mix(white, 0.2), textOn(dark))
	b.css = []byte(css)
	sum := sha256.Sum256(b.css)
	b.version = hex.EncodeToString(sum[:6])
	return b
}

// validLogoURL accepts an absolute http(s) URL or a same-site path.
func validLogoURL(s string) bool {
	if strings.ContainsAny(s, " \t\r\n\"'<>\\") || len(s) > 2048 {
		return false
	}
	if strings.HasPrefix(s, "/") {
		return !strings.HasPrefix(s, "//")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	return u.Scheme == "https" || u.Scheme == "http"
}

// brandCSS serves the generated stylesheet. Its URL carries a content hash, so
// it can be cached like the static files.
func (h *Handler) brandCSS(w http.ResponseWriter, r *http.Request) {
	css := h.brand.css
	if css == nil {
		css = []byte("/* No brand colour configured. */\n")
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/css; charset=utf-8")
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	hd.Set("Content-Length", strconv.Itoa(len(css)))
	_, _ = w.Write(css)
}
