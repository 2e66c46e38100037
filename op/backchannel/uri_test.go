package backchannel

import "testing"

func TestValidateURI(t *testing.T) {
	ok := []string{
		"https://app.example/backchannel-logout",
		"https://app.example:8443/bcl?tenant=a&x=1",
		"https://10.0.0.5/bcl",
		"HTTPS://app.example/bcl",
		"http://localhost:3000/api/backchannel-logout",
		"http://LOCALHOST/bcl",
		"http://127.0.0.1:9000/bcl",
		"http://127.8.9.10/bcl",
		"http://[::1]:8080/bcl",
	}
	bad := []string{
		"",
		"/relative/path",
		"app.example/bcl",
		"https:opaque",
		"https:///no-host",
		"https://:443/bcl",
		"http://app.example/bcl",
		"http://10.0.0.5/bcl",
		"http://localhost.evil.example/bcl",
		"http://127.0.0.1.nip.io/bcl",
		"http://[::2]/bcl",
		"http://0.0.0.0/bcl",
		"https://app.example/bcl#frag",
		"https://app.example/bcl#",
		"https://user:pass@app.example/bcl",
		"https://user@app.example/bcl",
		"ftp://app.example/bcl",
		"javascript:alert(1)",
		"https://app.example/bc l\n",
		"https://app.example:port/bcl",
	}
	for _, u := range ok {
		if err := ValidateURI(u); err != nil {
			t.Errorf("ValidateURI(%q) = %v, want ok", u, err)
		}
	}
	for _, u := range bad {
		if err := ValidateURI(u); err == nil {
			t.Errorf("ValidateURI(%q) accepted", u)
		}
	}
}
