package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// No Docker daemon runs in CI, so the image is never built there; these
// tests hold the Dockerfile and docker-compose.yml to the properties that
// matter (non-root, static, health-checked, pinned). .ci/container-check
// builds the binary the same way and runs the same health check.

// dockerStage is one FROM … stage of a Dockerfile: its base image and its
// instructions (keyword upper-cased, continuation lines joined).
type dockerStage struct {
	from  string
	instr [][2]string // {KEYWORD, arguments}
}

func (s dockerStage) all(keyword string) []string {
	var out []string
	for _, in := range s.instr {
		if in[0] == keyword {
			out = append(out, in[1])
		}
	}
	return out
}

func parseDockerfile(t *testing.T, text string) []dockerStage {
	t.Helper()
	var stages []dockerStage
	var line strings.Builder
	flush := func() {
		l := strings.TrimSpace(line.String())
		line.Reset()
		if l == "" {
			return
		}
		kw, args, _ := strings.Cut(l, " ")
		kw = strings.ToUpper(kw)
		args = strings.TrimSpace(args)
		if kw == "FROM" {
			img := strings.Fields(strings.ReplaceAll(args, "--platform=", "--platform= "))
			for i := 0; i < len(img); i++ { // skip --flags
				if !strings.HasPrefix(img[i], "--") {
					stages = append(stages, dockerStage{from: img[i]})
					return
				}
			}
			t.Fatalf("Dockerfile: FROM without an image: %q", l)
		}
		if len(stages) == 0 {
			if kw != "ARG" {
				t.Fatalf("Dockerfile: %s before the first FROM", kw)
			}
			return
		}
		s := &stages[len(stages)-1]
		s.instr = append(s.instr, [2]string{kw, args})
	}
	for _, raw := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(raw)
		if line.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasPrefix(trimmed, "#") { // a comment inside a continued instruction
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			line.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		line.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := parseDockerfile(t, string(b))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a build stage and a final stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	// The build stage's Go is go.mod's (the image's Go must not be older).
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)(\.\d+)?\s*$`).FindStringSubmatch(string(gomod))
	if goLine == nil {
		t.Fatal("go.mod has no go line")
	}
	goTag := regexp.MustCompile(`^golang:(\d+\.\d+)(\.\d+)?-`).FindStringSubmatch(build.from)
	if goTag == nil {
		t.Fatalf("build stage FROM %s: want golang:<go.mod version>-<distro>", build.from)
	}
	if goTag[1] != goLine[1] || (goTag[2] != "" && goTag[2] != goLine[2]) {
		t.Errorf("build stage FROM %s does not match go.mod's go %s%s", build.from, goLine[1], goLine[2])
	}
	var staticBuild bool
	for _, run := range build.all("RUN") {
		if strings.Contains(run, "go build") && strings.Contains(run, "CGO_ENABLED=0") && strings.Contains(run, "-trimpath") {
			staticBuild = true
		}
	}
	if !staticBuild {
		t.Error("no RUN in the build stage runs `CGO_ENABLED=0 go build -trimpath`")
	}

	if !(final.from == "scratch" || strings.HasPrefix(final.from, "gcr.io/distroless/")) {
		t.Errorf("final stage FROM %s: want distroless or scratch", final.from)
	}
	// Distroless names its Debian release in the image (static-debian12);
	// the tag picks the variant. A digest cannot be fetched without a registry.
	if _, tag, _ := strings.Cut(final.from[strings.LastIndex(final.from, "/")+1:], ":"); final.from != "scratch" && (tag == "" || tag == "latest") {
		t.Errorf("final stage FROM %s: want an explicit tag, not latest", final.from)
	}
	users := final.all("USER")
	if len(users) == 0 {
		t.Error("final stage has no USER: it would run as root")
	} else if u := strings.Fields(users[len(users)-1])[0]; u == "root" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		t.Errorf("final stage runs as USER %s", u)
	}
	hc := final.all("HEALTHCHECK")
	if len(hc) != 1 || !strings.Contains(hc[0], `CMD ["/gatehouse", "healthcheck"]`) {
		t.Errorf(`final stage HEALTHCHECK %q: want exec form CMD ["/gatehouse", "healthcheck"]`, hc)
	}
	want := map[string]string{
		"ENTRYPOINT": `["/gatehouse"]`,
		"CMD":        `["serve"]`,
		"VOLUME":     "/data",
		"EXPOSE":     "8080 9464",
	}
	for kw, v := range want {
		if got := final.all(kw); !slices.Contains(got, v) {
			t.Errorf("final stage %s %q, want %s", kw, got, v)
		}
	}
	if env := strings.Join(final.all("ENV"), " "); !strings.Contains(env, "GATEHOUSE_DATA_DIR=/data") {
		t.Errorf("final stage ENV %q does not set GATEHOUSE_DATA_DIR=/data", env)
	}

	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".git", "data", "e2e/node_modules", "examples/*/node_modules"} {
		if !slices.Contains(strings.Fields(string(ignore)), p) {
			t.Errorf(".dockerignore does not list %s", p)
		}
	}
}

// imagePinned says whether an image reference names a version: a digest, or
// a tag with a digit in it ("16", "v1.31.1"), not latest, edge or a bare name.
func imagePinned(ref string) bool {
	if strings.Contains(ref, "@sha256:") {
		return true
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	return ok && tag != "latest" && strings.ContainsAny(tag, "0123456789")
}

func TestImagePinned(t *testing.T) {
	for ref, want := range map[string]bool{
		"postgres:16": true, "axllent/mailpit:v1.31.1": true, "gcr.io/distroless/static-debian12:nonroot": false,
		"redis": false, "redis:latest": false, "axllent/mailpit:edge": false, "localhost:5000/x": false,
		"localhost:5000/x:1.2": true, "redis@sha256:0123": true,
	} {
		if got := imagePinned(ref); got != want {
			t.Errorf("imagePinned(%q) = %v, want %v", ref, got, want)
		}
	}
}

// composeFile is the part of docker-compose.yml the test looks at.
type composeFile struct {
	Services map[string]struct {
		Image       string                                `yaml:"image"`
		Build       any                                   `yaml:"build"`
		DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
		Environment map[string]string                     `yaml:"environment"`
		Healthcheck *struct {
			Test    []string `yaml:"test"`
			Disable bool     `yaml:"disable"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"gatehouse", "postgres", "redis", "mailpit"} {
		if _, ok := cf.Services[name]; !ok {
			t.Errorf("docker-compose.yml has no %s service", name)
		}
	}
	for name, s := range cf.Services {
		if s.Build == nil && !imagePinned(s.Image) {
			t.Errorf("service %s: image %q is not pinned to a version", name, s.Image)
		}
		if s.Build != nil && s.Image != "" && strings.HasSuffix(s.Image, ":latest") {
			t.Errorf("service %s: built image tagged %q", name, s.Image)
		}
		if s.Healthcheck == nil || s.Healthcheck.Disable || len(s.Healthcheck.Test) < 2 {
			t.Errorf("service %s has no health check", name)
		}
	}

	gh := cf.Services["gatehouse"]
	if gh.Build == nil {
		t.Error("gatehouse service is not built from the Dockerfile")
	}
	if gh.Healthcheck != nil && !slices.Equal(gh.Healthcheck.Test, []string{"CMD", "/gatehouse", "healthcheck"}) {
		t.Errorf("gatehouse health check %q, want the image's: /gatehouse healthcheck", gh.Healthcheck.Test)
	}
	for name := range cf.Services {
		if name != "gatehouse" && gh.DependsOn[name].Condition != "service_healthy" {
			t.Errorf("gatehouse does not wait for %s to be healthy", name)
		}
	}
	env := gh.Environment
	for k, want := range map[string]string{
		"SMTP_URL":         "smtp://mailpit:1025",
		"GATEHOUSE_ISSUER": "http://localhost:8080",
		"REDIS_URL":        "redis://redis:6379/0",
	} {
		if env[k] != want {
			t.Errorf("gatehouse %s = %q, want %q", k, env[k], want)
		}
	}
	if !strings.Contains(env["DATABASE_URL"], "@postgres:5432/") {
		t.Errorf("gatehouse DATABASE_URL %q does not point at the postgres service", env["DATABASE_URL"])
	}
	// The development default must pass loadConfig's length check, or
	// `docker compose up` stops at start-up; and it must say what it is.
	m := regexp.MustCompile(`^\$\{GATEHOUSE_SECRET:-([^}]+)\}$`).FindStringSubmatch(env["GATEHOUSE_SECRET"])
	if m == nil {
		t.Fatalf("gatehouse GATEHOUSE_SECRET = %q, want ${GATEHOUSE_SECRET:-<development value>}", env["GATEHOUSE_SECRET"])
	}
	if len(m[1]) < 32 || !strings.Contains(strings.ToLower(m[1]), "insecure") {
		t.Errorf("development secret %q: want at least 32 characters, marked insecure", m[1])
	}
}
