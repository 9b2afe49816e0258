package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerfiles holds every service's Dockerfile to the image the offline builder makes: a static binary on
// an empty base, /marquee/<service> as the entrypoint, the non-root user, pinned build images.
func TestDockerfiles(t *testing.T) {
	repo, err := FindRepo(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"catalog", "search", "auth", "gateway"} {
		t.Run(svc, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(repo.Root, "services", svc, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			var froms []string
			var user, entrypoint string
			for _, line := range strings.Split(string(data), "\n") {
				fields := strings.Fields(line)
				if len(fields) < 2 {
					continue
				}
				switch strings.ToUpper(fields[0]) {
				case "FROM":
					froms = append(froms, fields[1])
				case "USER":
					user = fields[1]
				case "ENTRYPOINT":
					entrypoint = strings.TrimSpace(strings.TrimPrefix(line, fields[0]))
				}
			}
			if len(froms) < 2 || froms[len(froms)-1] != "scratch" {
				t.Errorf("the final stage is %v, want FROM scratch after a build stage", froms)
			}
			for _, from := range froms[:max(len(froms)-1, 0)] {
				if problem := imageProblem(from); problem != "" && !strings.Contains(from, "${") {
					t.Errorf("build image %s: %s", from, problem)
				}
			}
			if user != "65532:65532" {
				t.Errorf("USER %q, want 65532:65532", user)
			}
			if want := `["/marquee/` + svc + `"]`; entrypoint != want {
				t.Errorf("ENTRYPOINT %s, want %s", entrypoint, want)
			}
			for _, must := range []string{"CGO_ENABLED=0", "./services/" + svc + "/cmd/" + svc, "ca-certificates.crt"} {
				if !strings.Contains(string(data), must) {
					t.Errorf("the Dockerfile does not mention %s", must)
				}
			}
		})
	}
}
