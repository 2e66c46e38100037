package login

import (
	"github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
)

// Devices of the session list: what a person recognises of a User-Agent
// header, "Chrome on macOS" or "Safari on iPhone", not the header itself.
// Parsing is go-useragent's (docs/design.md says why that library); its
// parser is built on first use, once per process (about 5 MB, 0.1 s), so
// commands that never show a device do not pay for it.

// unknownBrowser names a device whose browser cannot be told.
const unknownBrowser = "Unknown browser"

// browserNames are the library's browser names people would not recognise
// as they are.
var browserNames = map[agents.Browser]string{
	agents.BrowserIE: "Internet Explorer",
}

// osNames are the operating systems spelt the way their makers do.
var osNames = map[agents.OS]string{
	agents.OSMacOS: "macOS",
}

// DeviceName describes the browser and system behind userAgent, e.g.
// "Firefox on Windows", "Safari on iPhone"; "Unknown browser" when it
// cannot tell the browser (a script, an empty header), with " on …" when
// it can still tell the system.
func DeviceName(userAgent string) string {
	if userAgent == "" {
		return unknownBrowser
	}
	ua := useragent.NewParser().Parse(userAgent)
	browser := string(ua.Browser())
	if n, ok := browserNames[ua.Browser()]; ok {
		browser = n
	}
	if browser == "" {
		browser = unknownBrowser
	}
	system := systemName(ua)
	if system == "" {
		return browser
	}
	return browser + " on " + system
}

// systemName is the operating system, or for iOS the kind of device, which
// is what people call it ("on iPhone", not "on iOS").
func systemName(ua useragent.UserAgent) string {
	if ua.OS() == agents.OSIOS {
		switch ua.Device() {
		case agents.DeviceMobile:
			return "iPhone"
		case agents.DeviceTablet:
			return "iPad"
		}
	}
	if n, ok := osNames[ua.OS()]; ok {
		return n
	}
	return string(ua.OS())
}
